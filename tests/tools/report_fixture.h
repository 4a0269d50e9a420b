#ifndef STYLESWEEP_TESTS_TOOLS_REPORT_FIXTURE_H_
#define STYLESWEEP_TESTS_TOOLS_REPORT_FIXTURE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "coordinator/server.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"

namespace stylesweep::testing {

// The fixed time the fixture's sweep was created at (2023-11-14 22:13:20 UTC).
inline constexpr int64_t kFixtureStartMs = 1700000000000;

// Writes a small sweep through the store into a new database file, with fixed
// times and losses, so that every report of it is the same byte for byte:
// sweep 1 'fixture', a grid of style_weight {0.01, 0.1, 1, 10} (rows) x
// learning_rate {0.02, 0.05} (columns), 4 steps, a snapshot every 2 steps.
//   #0, #1, #2  SUCCEEDED (#2 is the best), 5 loss rows, step-2 and final images
//   #3          FAILED after step 2 (out of memory), no image
//   #4          PRUNED after step 2, its step-2 image as final
//   #5          FAILED: diverged at step 3 (total loss NaN); its last finite
//               losses (step 2) are the lowest of the sweep, and its step-2
//               image is its final one
//   #6, #7      QUEUED
// Snapshot paths are "1-fixture/run-N/attempt-1/...". With `write_images`,
// real 16x8 PNGs (and the content and style images, as blobs) are written
// under `artifacts_dir`; otherwise the directory is only named.
//
// Evaluations (FixtureEvaluation), chosen so that ranking by eval/score and
// by loss/total disagree:
//   #0  step 4: eval/style 0.8, eval/content 0.05, eval/score 0.45
//   #1  step 4: eval/style 0.4, eval/content 0.12, eval/score 0.31 (the best)
//   #2  step 4: eval/style 0.3, eval/content 0.3,  eval/score 0.4  (the lowest loss)
//   #3  none (it ran out of memory before its first evaluation)
//   #4  step 2: eval/style 0.5, eval/content 0.4,  eval/score 0.55 (dominated by #2)
//   #5  step 2: eval/style 0.1, eval/content 0.02, eval/score 0.075, the best of
//       all, but it diverged
//   #6, #7 none
// so the Pareto front of eval/style and eval/content is #0, #1, #2. They go
// to the store with the metrics of their step.
absl::Status WriteFixtureDatabase(const std::string& db_path, const std::string& artifacts_dir, bool write_images);

// The evaluation of the fixture's run #index and the step it was measured at
// (-1 and a zero Evaluation: none).
std::pair<int, Evaluation> FixtureEvaluation(int index);
// Whether a run read back from the fixture carries the evaluation listed
// above (what reports are built from must be what the store kept).
bool HasFixtureEvaluation(const RunRecord& run);

// A test with the fixture database (with images) at dir_/f.db, its artifacts
// at dir_/artifacts, and a coordinator serving them on a loopback port.
class FixtureServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorServer> server_;
};

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TOOLS_REPORT_FIXTURE_H_
