#ifndef STYLESWEEP_COORDINATOR_SCHEDULER_EARLY_STOP_H_
#define STYLESWEEP_COORDINATOR_SCHEDULER_EARLY_STOP_H_

// Early termination of a sweep's runs from their per-step losses. Pure
// domain code: the scheduler feeds it values read from the store.
//
// Runs are compared at rungs, the steps min_iter * eta^k (k = 0, 1, ...)
// before a run's last step. At a rung, a run is compared with every other run
// of the sweep that has reached that rung (running or finished, in any
// order: this is the asynchronous form of successive halving, so a sweep never
// waits for a rung to fill up):
//  - hyperband: the run continues when it is among the best ceil(n / eta) of
//    the n runs at the rung (itself included), else it is pruned;
//  - median: it is pruned when it is worse than the median of at least two
//    other runs at that rung (the median stopping rule).
// The first run at a rung always continues, so a sweep's best run can only be
// pruned by a run that was better than it at the same step.

#include <cstdint>
#include <vector>

#include "common/sweep_spec.h"
#include "coordinator/store/store.h"

namespace stylesweep {

// The rungs of a run of `steps` steps, ascending; empty without early
// termination.
std::vector<int> Rungs(const EarlyTerminate& rule, int steps);

// Whether a run whose value at a rung is `value` should stop, given the
// values of the other runs at that rung (lower is better).
bool ShouldPrune(const EarlyTerminate& rule, double value, const std::vector<double>& others);

// Optimiser steps a sweep's runs ran, and those early termination saved
// (for each PRUNED run: its steps minus the last step it reported).
struct ComputeSaved {
  int64_t steps_run = 0;
  int64_t steps_saved = 0;
};
ComputeSaved CountSteps(const std::vector<RunRecord>& runs);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_SCHEDULER_EARLY_STOP_H_
