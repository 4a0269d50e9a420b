#ifndef STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_
#define STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_

#include <atomic>
#include <string>

#include "agent/engine/engine.h"

namespace stylesweep::testing {

// Stands in for the LibTorch engine in protocol tests: no torch, instant.
// Reads both images (so a missing one fails like the real engine), then
// reports a decreasing loss per step, an evaluation where the real engine
// evaluates, and a fake PNG for each snapshot.
// Fails with InvalidArgument when the content file does not start with the
// PNG signature. With DivergeAt, runs diverge as the real engine's do.
// Thread-compatible.
class FakeEngine final : public Engine {
 public:
  // With `synthetic_objective`, losses follow SyntheticTotal instead.
  explicit FakeEngine(bool synthetic_objective = false) : synthetic_objective_(synthetic_objective) {}

  // A loss curve for search and early-termination tests: a floor that
  // depends on the run's style_weight, learning_rate and tv_weight (best at
  // 1e-2, 10^-1.7 and 10), approached as 5/sqrt(1 + step). Curves of
  // different runs never cross, so the run that ends best is also best at
  // every earlier step.
  static double SyntheticFloor(const RunParams& params);
  static double SyntheticTotal(const RunParams& params, int step);

  absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) override;
  std::string Describe() const override { return "fake engine"; }

  int runs() const { return runs_; }

  // Runs whose style_weight is at least `min_style_weight` diverge at
  // `step` (when it is within their steps) as engine.h describes: rows
  // 0 .. step-1, the image of step-1 as the last snapshot (unless it was
  // just taken), then DivergedError(step, "total loss is NaN").
  void DivergeAt(int step, double min_style_weight = 0) {
    diverge_step_ = step;
    diverge_min_style_weight_ = min_style_weight;
  }

  // A snapshot's bytes: the PNG signature followed by "step=<n>".
  static std::string FakePng(int step);

 private:
  std::atomic<int> runs_{0};
  const bool synthetic_objective_;
  int diverge_step_ = -1;  // -1: never
  double diverge_min_style_weight_ = 0;
};

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_FAKE_ENGINE_H_
