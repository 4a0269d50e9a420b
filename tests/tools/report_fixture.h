#ifndef STYLESWEEP_TESTS_TOOLS_REPORT_FIXTURE_H_
#define STYLESWEEP_TESTS_TOOLS_REPORT_FIXTURE_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "coordinator/server.h"
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
absl::Status WriteFixtureDatabase(const std::string& db_path, const std::string& artifacts_dir, bool write_images);

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
