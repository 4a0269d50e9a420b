#ifndef STYLESWEEP_AGENT_ENGINE_ENGINE_H_
#define STYLESWEEP_AGENT_ENGINE_ENGINE_H_

// The style-transfer engine as the rest of the agent sees it. This header is
// torch-free on purpose: the runner, the CLI and the protocol tests depend on
// it without compiling LibTorch, and tests drive the runner with a fake.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/evaluation.h"
#include "common/run_params.h"

namespace stylesweep {

// Losses of the image after `step` optimiser updates (step 0: the initial
// image). Values are the weighted terms that are summed into `total`. With
// optimizer lbfgs the image is optimised unclipped, and these are the losses
// of the unclipped image; images handed over and `eval` are of the image
// clipped to [0, 1].
struct StepMetrics {
  int step = 0;
  double content = 0;
  double style = 0;
  double tv = 0;
  double total = 0;
  std::vector<double> style_per_layer;  // weighted, in params.style_layers order
  double step_seconds = 0;              // wall time of the step that led here
  // The evaluation of this step's image (common/evaluation.h), at the steps
  // the engine evaluates: step 0, every snapshot step, the last step, and
  // the steps EngineCallbacks::evaluate_at asks for; set before on_step
  // sees the row. Its cost is not part of step_seconds. Absent at every
  // step of a run that cannot be evaluated: a weights file that stops
  // before block5_conv1, or an image whose short side at eval_size is below
  // 16 px (the engine logs a warning that says which).
  std::optional<Evaluation> eval;
  double eval_seconds = 0;  // wall time of that evaluation
};

struct EngineCallbacks {
  // After every step, and once for step 0 before any update.
  std::function<void(const StepMetrics&)> on_step;
  // With a PNG encoding of the image after `step` updates: every
  // params.snapshot_every steps and always for the final step. When the run
  // diverges at step N > 0 (see Engine::Run), once more with the image after
  // N - 1 updates (step 0: the initial image), unless that step's scheduled
  // snapshot was the last call. A non-OK return aborts the run with that
  // status (e.g. the disk is full).
  std::function<absl::Status(int step, const std::string& png)> on_snapshot;
  // Steps to evaluate besides step 0, the snapshots and the last step (the
  // early-termination rungs, where runs are compared). May be empty. Asked
  // once per reported step, before on_step.
  std::function<bool(int step)> evaluate_at;
  // Polled between steps; true stops the run, which returns Cancelled.
  std::function<bool()> should_stop;
  // When should_stop stopped the run: the image as it is then (after
  // `step` updates, clipped, colours preserved if asked), so that a run cut short
  // (pruned, say) still has its latest image. Not called for step 0.
  std::function<void(int step, const std::string& png)> on_stopped;
};

struct EngineOptions {
  std::string device = "cpu";  // "cpu" or "cuda:N"
  int threads = 0;             // intra-op threads; 0: all cores
  std::string weights_path;    // empty: seeded random VGG19 (with a warning)
};

// Runs one style transfer. Thread-compatible: one Run at a time per Engine.
// Engines in one process share LibTorch's global state (the random seed, the
// intra-op thread pool), so Runs of several engines at once in one process are
// reproducible only when each sets the same thread count.
class Engine {
 public:
  virtual ~Engine() = default;

  // Optimises for params.steps steps. `params.content` and `params.style`
  // must be readable local image files (PNG or JPEG): blob ids from a
  // coordinator are resolved to cached files by the runner first.
  // `params.weights`, when set, names a weights file on this machine that
  // replaces the engine's own for the run (loaded once, then kept for the
  // runs that follow). Returns OK when all steps ran,
  // Cancelled when should_stop asked to stop, DivergedError (below) when a
  // loss became NaN or infinite, and InvalidArgument/NotFound/Internal with a
  // message naming the file or option when it cannot run.
  //
  // Divergence: at the first step N whose loss (the total or any term) is
  // not finite the run ends at once. on_step has been called for steps
  // 0 .. N-1 only, and the last on_snapshot call carries the image after
  // N - 1 updates, the last one with finite losses (none when N is 0).
  virtual absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) = 0;

  // A short description for logs and agent registration ("cpu, 2 threads").
  virtual std::string Describe() const = 0;
};

// A run that failed because the device (or, on a CPU, the machine) ran out
// of memory: the run may fit on another agent. Marked with a payload so that
// other resource errors (a full disk) are not mistaken for it.
inline constexpr char kOutOfMemoryPayload[] = "type.stylesweep.dev/out-of-memory";
inline absl::Status OutOfMemoryError(const std::string& message) {
  absl::Status status = absl::ResourceExhaustedError(message);
  status.SetPayload(kOutOfMemoryPayload, absl::Cord("1"));
  return status;
}
inline bool IsOutOfMemory(const absl::Status& status) {
  return absl::IsResourceExhausted(status) && status.GetPayload(kOutOfMemoryPayload).has_value();
}

// A run whose loss became NaN or infinite at `step`: its parameters (a
// weight large enough to overflow float32, say) are at fault, so another
// agent would fare no better. OutOfRange, with the step as a payload; the
// message reads "diverged at step N: <what>", e.g. "total loss is NaN".
inline constexpr char kDivergedPayload[] = "type.stylesweep.dev/diverged-step";
inline absl::Status DivergedError(int step, const std::string& what) {
  absl::Status status = absl::OutOfRangeError(absl::StrCat("diverged at step ", step, ": ", what));
  status.SetPayload(kDivergedPayload, absl::Cord(absl::StrCat(step)));
  return status;
}
// The step at which the run diverged, when `status` is a DivergedError.
inline std::optional<int> DivergedStep(const absl::Status& status) {
  if (!absl::IsOutOfRange(status)) return std::nullopt;
  const auto payload = status.GetPayload(kDivergedPayload);
  int step = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &step)) return std::nullopt;
  return step;
}

// Creates the LibTorch engine. Fails with a message that names the weights
// file and says how to convert it when the file cannot be used, or names the
// device when it is unavailable.
absl::StatusOr<std::unique_ptr<Engine>> CreateTorchEngine(const EngineOptions& options);

// Loads the weights file at `path` as the engine would, and discards it: OK
// when the engine can use it, else the loader's error (which names the file,
// what is wrong, and the command that converts it).
absl::Status CheckWeightsFile(const std::string& path);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_ENGINE_H_
