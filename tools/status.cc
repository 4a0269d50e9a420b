#include "tools/status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/run_params.h"
#include "nlohmann/json.hpp"
#include "tools/run_query.h"
#include "tools/terminal_text.h"

namespace stylesweep {
namespace {

bool InProgress(RunState state) { return state == RunState::kQueued || state == RunState::kRunning; }

}  // namespace

SweepProgress MeasureProgress(const SweepView& view, int64_t now_ms) {
  SweepProgress progress;
  const int64_t window_start = now_ms - kRateWindowMs;
  int64_t earliest_start = now_ms;
  double recent_steps = 0;
  bool going = false;
  int last_steps = 0;
  for (const RunRecord& run : view.runs) {
    const int steps = PlannedSteps(run.params_json);
    if (steps > 0) last_steps = steps;
    // A queued run starts again from step 0, whatever an earlier attempt did.
    const int64_t done = run.state == RunState::kQueued ? 0 : std::max(run.last_step, 0);
    progress.steps_done += done;
    progress.steps_planned += done;
    if (InProgress(run.state)) {
      going = true;
      progress.steps_planned += std::max<int64_t>(steps - done, 0);
    }
    if (done > 0 && run.started_ms > 0) {
      const int64_t end = run.finished_ms > 0 ? run.finished_ms : now_ms;
      const int64_t overlap = std::min(end, now_ms) - std::max(run.started_ms, window_start);
      if (overlap > 0) {
        recent_steps += end > run.started_ms ? static_cast<double>(done) * overlap / (end - run.started_ms) : done;
        earliest_start = std::min(earliest_start, std::max(run.started_ms, window_start));
      }
    }
  }
  const std::vector<RunRow> rows = MakeRunRows(view.runs, nlohmann::json::object());
  progress.best_metric = DefaultMetric(rows);
  const RunRow* best = BestRow(rows, progress.best_metric);
  if (best == nullptr && progress.best_metric != "loss/total") {
    // Evaluated runs, but none has succeeded yet: the best of those that
    // have, by their losses.
    progress.best_metric = "loss/total";
    best = BestRow(rows, progress.best_metric);
  }
  if (best != nullptr) progress.best = best->run;
  for (size_t i : ParetoFrontRows(rows)) progress.pareto_front.push_back(rows[i].run);
  // A bayes sweep proposes its runs as results arrive: those still to come
  // count as much as the last run's steps each.
  if (view.sweep.method == "bayes" && going && view.sweep.run_cap > static_cast<int>(view.runs.size())) {
    progress.steps_planned += static_cast<int64_t>(view.sweep.run_cap - view.runs.size()) * last_steps;
  }
  if (recent_steps > 0 && now_ms > earliest_start) {
    progress.steps_per_second = recent_steps * 1000.0 / (now_ms - earliest_start);
  }
  const int64_t remaining = progress.steps_planned - progress.steps_done;
  if (remaining > 0 && progress.steps_per_second > 0) progress.eta_seconds = remaining / progress.steps_per_second;
  return progress;
}

std::string FormatSeconds(double seconds) {
  const int64_t s = std::llround(std::max(0.0, seconds));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  }
  return buf;
}

namespace {

// The failed runs' errors, with the end of their agent's log: what a user
// needs to decide between fixing the sweep and `stylesweep retry --failed`.
void AppendFailures(const SweepView& view, std::string& out) {
  constexpr int kMaxShown = 5;
  constexpr size_t kLogLines = 10;
  int failed = 0;
  for (const RunRecord& run : view.runs) {
    if (run.state != RunState::kFailed) continue;
    if (++failed > kMaxShown) continue;
    absl::StrAppend(&out, failed == 1 ? "\nfailed runs:\n" : "", "  run ", run.id, " (#", run.index, ", attempt ",
                    run.attempt, run.agent.empty() ? "" : absl::StrCat(", agent ", ForTerminal(run.agent)), "): ",
                    ForTerminal(run.error), "\n");
    if (run.log_tail.empty()) continue;
    std::vector<std::string> lines = absl::StrSplit(run.log_tail, '\n', absl::SkipEmpty());
    if (lines.size() > kLogLines) lines.erase(lines.begin(), lines.end() - kLogLines);
    absl::StrAppend(&out, "    the agent's log, last ", lines.size(), " lines:\n");
    for (const std::string& line : lines) absl::StrAppend(&out, "      ", ForTerminal(line), "\n");
  }
  if (failed > kMaxShown) {
    absl::StrAppend(&out, "  and ", failed - kMaxShown, " more: stylesweep report ", view.sweep.id,
                    " --where \"state = FAILED\"\n");
  }
}

}  // namespace

std::string RenderSweepStatus(const SweepView& view, int64_t now_ms) {
  const SweepProgress progress = MeasureProgress(view, now_ms);
  std::string out = absl::StrCat("sweep ", view.sweep.id, " '", ForTerminal(view.sweep.name), "' (",
                                 ForTerminal(view.sweep.method), ", ", ForTerminal(view.sweep.source), ")", view.sweep.paused ? " paused" : "", "\n");
  absl::StrAppend(&out, "runs:      ", SweepCountsLine(view), "\n");
  char percent[16] = "-";
  if (progress.steps_planned > 0) {
    std::snprintf(percent, sizeof percent, "%.1f%%", 100.0 * progress.steps_done / progress.steps_planned);
  }
  absl::StrAppend(&out, "progress:  ", progress.steps_done, " of ", progress.steps_planned, " steps (", percent, ")\n");
  const int64_t remaining = progress.steps_planned - progress.steps_done;
  if (remaining <= 0) {
    absl::StrAppend(&out, "eta:       nothing left to run\n");
  } else if (progress.eta_seconds) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.3g", progress.steps_per_second);
    absl::StrAppend(&out, "eta:       ", FormatSeconds(*progress.eta_seconds), " (", remaining, " steps at ", rate,
                    " steps/s, the rate of the last ", kRateWindowMs / 60000, " minutes)",
                    view.sweep.paused ? "; paused: queued runs wait for `stylesweep resume`" : "", "\n");
  } else {
    absl::StrAppend(&out, "eta:       unknown: no steps in the last ", kRateWindowMs / 60000, " minutes",
                    view.sweep.paused ? " (paused: queued runs wait for `stylesweep resume`)"
                                      : " (are agents connected?)",
                    "\n");
  }
  std::vector<std::string> front;
  for (const RunRecord& run : progress.pareto_front) front.push_back(absl::StrCat("#", run.index));
  const std::string front_line =
      front.empty() ? ""
                    : absl::StrCat("pareto front: ", front.size() == 1 ? "run " : "runs ", absl::StrJoin(front, ", "),
                                   " (of eval/style and eval/content, lower better on both)\n");
  if (!progress.best) {
    absl::StrAppend(&out, "best:      none yet (no run has succeeded)\n", front_line);
    AppendFailures(view, out);
    return out;
  }
  // The parameters that vary across the sweep say which run it is.
  const nlohmann::json spec = nlohmann::json::parse(view.sweep.spec_json, nullptr, false);
  const nlohmann::json images =
      spec.is_object() && spec.contains("images") ? spec["images"] : nlohmann::json::object();
  const std::vector<RunRow> rows = MakeRunRows(view.runs, images);
  const RunRow best = MakeRunRows({*progress.best}, images).front();
  std::vector<std::string> params;
  for (const auto& [key, value] : best.params.items()) {
    const bool varies = std::any_of(rows.begin(), rows.end(),
                                    [&](const RunRow& r) { return !r.params.contains(key) || r.params[key] != value; });
    if (varies) params.push_back(ForTerminal(absl::StrCat(key, "=", FormatParameter(key, value))));
  }
  absl::StrAppend(&out, "best:      run ", best.run.id, " (#", best.run.index, ") ", progress.best_metric, " ",
                  MetricCell(best, progress.best_metric),
                  params.empty() ? "" : absl::StrCat("  ", absl::StrJoin(params, " ")), "\n", front_line);
  AppendFailures(view, out);
  return out;
}

}  // namespace stylesweep
