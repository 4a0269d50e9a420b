#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "agent/engine/engine.h"
#include "common/files.h"
#include "nlohmann/json.hpp"
#include "tools/commands.h"

namespace stylesweep {

int RunStylize(const StylizeOptions& options) {
  RunParams params = options.params;
  if (absl::Status s = params.Validate(); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 2;
  }
  bool missing = false;
  params.ForEachImage([&missing](std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      spdlog::error("cannot read image '{}': no such file", path);
      missing = true;
    }
  });
  if (missing) return 2;
  EngineOptions engine_options;
  engine_options.device = options.device;
  engine_options.threads = options.threads;
  engine_options.weights_path = options.weights;
  auto engine = CreateTorchEngine(engine_options);
  if (!engine.ok()) {
    spdlog::error("{}", std::string(engine.status().message()));
    return 2;
  }

  std::ofstream metrics;
  if (!options.metrics_out.empty()) {
    metrics.open(options.metrics_out, std::ios::trunc);
    if (!metrics) {
      spdlog::error("cannot write metrics file '{}'", options.metrics_out);
      return 2;
    }
  }
  const std::filesystem::path out(options.out);
  const auto start = std::chrono::steady_clock::now();
  EngineCallbacks callbacks;
  callbacks.on_step = [&](const StepMetrics& m) {
    if (metrics.is_open()) {
      metrics << nlohmann::json{{"step", m.step},   {"content", m.content}, {"style", m.style},
                                {"tv", m.tv},       {"total", m.total},     {"step_seconds", m.step_seconds}}
                     .dump()
              << "\n";
      metrics.flush();
    }
    if (m.step == params.steps || (m.step > 0 && m.step % std::max(1, params.steps / 10) == 0)) {
      spdlog::info("step {}/{}: total {:.4g} (style {:.4g}, content {:.4g}, tv {:.4g})", m.step, params.steps,
                   m.total, m.style, m.content, m.tv);
    }
  };
  // params.steps is the run's total (Validate sums multires stages into it).
  callbacks.on_snapshot = [&](int step, const std::string& png) -> absl::Status {
    if (step == params.steps) return WriteFileAtomically(out.string(), png);
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "-step%06d", step);
    const auto path = out.parent_path() / (out.stem().string() + suffix + out.extension().string());
    return WriteFileAtomically(path.string(), png);
  };
  callbacks.should_stop = [] { return false; };
  absl::Status status = (*engine)->Run(params, callbacks);
  if (!status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s (%d steps in %.1f s)\n", options.out.c_str(), params.steps, seconds);
  return 0;
}

}  // namespace stylesweep
