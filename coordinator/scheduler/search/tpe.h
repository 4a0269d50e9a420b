#ifndef STYLESWEEP_COORDINATOR_SCHEDULER_SEARCH_TPE_H_
#define STYLESWEEP_COORDINATOR_SCHEDULER_SEARCH_TPE_H_

// Bayesian search for method: bayes, in the style of the Tree-structured
// Parzen Estimator (Bergstra et al., 2011; hyperopt). Pure domain code: no
// store, no clock; the same history and random stream give the same point.
//
// The space is SweepSpec::SearchSpace(): each coordinate is either a quantile
// in [0, 1) of a continuous distribution (which SweepSpec::Resolve maps to a
// value, so a log-uniform parameter is searched in log space for free) or an
// index into a parameter's listed values.

#include <vector>

#include "common/sweep_spec.h"

namespace stylesweep {

// A finished run as the suggester sees it: where it was, and how it did
// (lower is better; SweepSpec::Objective negates maximised metrics; a run
// that diverged is +infinity, worse than any other).
struct Observation {
  std::vector<double> point;
  double value = 0;
};

struct TpeOptions {
  // Points drawn at random before the model is used: with fewer, the
  // densities say nothing.
  int startup_trials = 8;
  // The share of observations that count as good.
  double gamma = 0.25;
  // Candidates drawn from the good density per coordinate; the one with the
  // best good/bad density ratio wins.
  int candidates = 24;
};

// Proposes the next point to try. With fewer than options.startup_trials
// observations (or none good), a point drawn from the parameters' own
// distributions. Otherwise each coordinate independently maximises
// l(x) / g(x), where l is a Parzen density over the best gamma share of the
// observations and g over the rest (each mixed with the prior so no region is
// ruled out). Thread-safe (no shared state).
std::vector<double> SuggestTpe(const std::vector<SearchDimension>& space, const std::vector<Observation>& history,
                               SweepRandom& random, const TpeOptions& options = {});

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_SCHEDULER_SEARCH_TPE_H_
