#include "coordinator/scheduler/early_stop.h"

#include <algorithm>

#include "nlohmann/json.hpp"

namespace stylesweep {

std::vector<int> Rungs(const EarlyTerminate& rule, int steps) {
  std::vector<int> rungs;
  if (rule.type.empty() || rule.min_iter <= 0) return rungs;
  const int64_t eta = std::max(rule.eta, 2);
  for (int64_t r = rule.min_iter; r < steps; r *= eta) rungs.push_back(static_cast<int>(r));
  return rungs;
}

bool ShouldPrune(const EarlyTerminate& rule, double value, const std::vector<double>& others) {
  if (rule.type == "hyperband") {
    const size_t n = others.size() + 1;
    const size_t keep = (n + static_cast<size_t>(rule.eta) - 1) / static_cast<size_t>(rule.eta);
    const size_t better = static_cast<size_t>(std::count_if(others.begin(), others.end(),
                                                            [value](double o) { return o < value; }));
    return better >= keep;
  }
  if (rule.type == "median") {
    if (others.size() < 2) return false;
    std::vector<double> sorted = others;
    std::sort(sorted.begin(), sorted.end());
    const size_t m = sorted.size();
    const double median = m % 2 == 1 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
    return value > median;
  }
  return false;
}

ComputeSaved CountSteps(const std::vector<RunRecord>& runs) {
  ComputeSaved c;
  for (const RunRecord& run : runs) {
    if (run.last_step > 0) c.steps_run += run.last_step;
    if (run.state != RunState::kPruned) continue;
    const nlohmann::json params = nlohmann::json::parse(run.params_json, nullptr, /*allow_exceptions=*/false);
    if (!params.is_object() || !params.contains("steps") || !params["steps"].is_number_integer()) continue;
    const int64_t steps = params["steps"].get<int64_t>();
    c.steps_saved += std::max<int64_t>(0, steps - std::max(run.last_step, 0));
  }
  return c;
}

}  // namespace stylesweep
