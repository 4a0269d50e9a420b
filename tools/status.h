#ifndef STYLESWEEP_TOOLS_STATUS_H_
#define STYLESWEEP_TOOLS_STATUS_H_

// `stylesweep status SWEEP`: how far a sweep has got and how long it has
// left. Pure functions of the records and the time, so tests pass a fixed
// `now_ms`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/report.h"

namespace stylesweep {

// How long the step rate behind the ETA looks back.
inline constexpr int64_t kRateWindowMs = 10 * 60 * 1000;

struct SweepProgress {
  // Optimiser steps the runs' current attempts have done, and those done
  // plus those still to do by QUEUED and RUNNING runs (and, for a bayes
  // sweep still going, the runs it has yet to propose). Runs that ended early
  // (FAILED, PRUNED, CANCELLED, LOST) plan no more steps.
  int64_t steps_done = 0;
  int64_t steps_planned = 0;
  // Steps per second over the last kRateWindowMs, all runs together (each
  // run's steps spread evenly over its attempt's time); 0 if none ran.
  double steps_per_second = 0;
  // Seconds until steps_planned at that rate; nullopt when nothing is left
  // to do or nothing ran recently.
  std::optional<double> eta_seconds;
  // The best SUCCEEDED run by best_metric: eval/score when the sweep's runs
  // have evaluations, else loss/total (DefaultMetric in run_query.h); never
  // a diverged run, whatever its last finite values.
  std::optional<RunRecord> best;
  std::string best_metric;
  // The runs on the Pareto front of eval/style and eval/content (with an
  // evaluation, not diverged, in any state), in run order; empty when no run
  // has an evaluation.
  std::vector<RunRecord> pareto_front;
};

SweepProgress MeasureProgress(const SweepView& view, int64_t now_ms);

// "48s", "12m05s", "3h04m".
std::string FormatSeconds(double seconds);

// Counts by state (how many of the FAILED runs diverged), progress, rate and
// ETA, the best run so far (and the metric it is best by) with the parameters
// that vary in the sweep, the runs on the Pareto front of eval/style and
// eval/content, and the failed runs' errors.
std::string RenderSweepStatus(const SweepView& view, int64_t now_ms);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_STATUS_H_
