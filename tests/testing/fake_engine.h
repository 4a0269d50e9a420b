#ifndef STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_
#define STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_

#include <atomic>
#include <string>

#include "agent/engine/engine.h"

namespace stylesweep::testing {

// Stands in for the LibTorch engine in protocol tests: no torch, instant.
// Reads both images (so a missing one fails like the real engine), then
// reports a decreasing loss per step and a fake PNG for each snapshot.
// Fails with InvalidArgument when the content file does not start with the
// PNG signature. Thread-compatible.
class FakeEngine final : public Engine {
 public:
  absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) override;
  std::string Describe() const override { return "fake engine"; }

  int runs() const { return runs_; }

  // A snapshot's bytes: the PNG signature followed by "step=<n>".
  static std::string FakePng(int step);

 private:
  std::atomic<int> runs_{0};
};

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_
