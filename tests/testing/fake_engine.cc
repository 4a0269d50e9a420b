#include "tests/testing/fake_engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/files.h"

namespace stylesweep::testing {
namespace {

constexpr char kPngSignature[] = "\x89PNG\r\n\x1a\n";

}  // namespace

double FakeEngine::SyntheticFloor(const RunParams& params) {
  const double a = std::log10(params.style_weight) + 2;
  const double b = std::log10(params.learning_rate) + 1.7;
  const double c = std::log10(std::max(params.tv_weight, 1e-9)) - 1;
  return a * a + b * b + 0.5 * c * c;
}

double FakeEngine::SyntheticTotal(const RunParams& params, int step) {
  return SyntheticFloor(params) + 5.0 / std::sqrt(1.0 + step);
}

std::string FakeEngine::FakePng(int step) {
  // A PNG's signature and IHDR (1 x 1, 8-bit RGB; the CRC is not checked by
  // anything that reads these), then the step, so each step's image differs.
  static const std::string kHeader = std::string(kPngSignature) + std::string("\0\0\0\x0dIHDR", 8) +
                                     std::string("\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\0\0\0\0", 17);
  return absl::StrCat(kHeader, "step=", step);
}

absl::Status FakeEngine::Run(const RunParams& params, const EngineCallbacks& callbacks) {
  ++runs_;
  absl::Status readable;
  RunParams images = params;
  images.ForEachImage([&readable](std::string& path) {
    if (!readable.ok()) return;
    auto bytes = ReadFileToString(path);
    if (!bytes.ok()) {
      readable = bytes.status();
    } else if (bytes->rfind(kPngSignature, 0) != 0) {
      readable = absl::InvalidArgumentError(absl::StrCat("cannot decode image '", path, "': not a PNG"));
    }
  });
  if (!readable.ok()) return readable;
  const bool diverges = diverge_step_ >= 0 && diverge_step_ <= params.steps &&
                        params.style_weight >= diverge_min_style_weight_;
  int last_snapshot = -1;
  for (int step = 0; step <= params.steps; ++step) {
    if (step > 0 && callbacks.should_stop && callbacks.should_stop()) {
      if (callbacks.on_stopped && step > 1) callbacks.on_stopped(step - 1, FakePng(step - 1));
      return absl::CancelledError("stopped");
    }
    if (diverges && step == diverge_step_) {
      if (step > 0 && step - 1 != last_snapshot && callbacks.on_snapshot) {
        if (absl::Status s = callbacks.on_snapshot(step - 1, FakePng(step - 1)); !s.ok()) return s;
      }
      return DivergedError(step, "total loss is NaN");
    }
    StepMetrics m;
    m.step = step;
    m.content = 10.0 / (1 + step);
    m.style = 100.0 / (1 + step) * params.style_weight;
    m.tv = 1.0;
    m.total = m.content + m.style + m.tv;
    if (synthetic_objective_) {
      m.total = SyntheticTotal(params, step);
      m.content = m.total / 2;
      m.style = m.total / 2;
      m.tv = 0;
    }
    // Evaluated where the real engine evaluates (engine.h). With the
    // synthetic objective eval/score follows its total, so search and early
    // termination on the default metric see the same ranking as on loss/total.
    const bool snapshot = step == params.steps || (step > 0 && params.snapshot_every > 0 && step % params.snapshot_every == 0);
    if (step == 0 || snapshot || (callbacks.evaluate_at && callbacks.evaluate_at(step))) {
      Evaluation e;
      const double level = synthetic_objective_ ? m.total / 100 : 1.0 / (1 + step);
      e.style = e.style_norm = level;
      e.content = e.content_norm = level;
      e.tv = e.tv_norm = 0.5;
      e.ssim = 1 / (1 + level);
      e.color = level / 2;
      m.eval = e;
    }
    if (callbacks.on_step) callbacks.on_step(m);
    if (snapshot && callbacks.on_snapshot) {
      if (absl::Status s = callbacks.on_snapshot(step, FakePng(step)); !s.ok()) return s;
      last_snapshot = step;
    }
  }
  return absl::OkStatus();
}

}  // namespace stylesweep::testing
