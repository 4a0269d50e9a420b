#ifndef STYLESWEEP_COMMON_PARETO_H_
#define STYLESWEEP_COMMON_PARETO_H_

// Pareto dominance over points with several objectives, lower better on every
// coordinate. A NaN coordinate counts as +infinity (worse than any value).

#include <cstddef>
#include <vector>

namespace stylesweep {

// a dominates b: no worse on every coordinate and better on at least one.
// Points of different lengths never dominate each other.
bool Dominates(const std::vector<double>& a, const std::vector<double>& b);

// Non-dominated sorting (Deb et al., NSGA-II): rank 0 for the points no
// other point dominates, rank 1 for those only rank-0 points dominate, and
// so on. Equal points share a rank. O(n² · d).
std::vector<int> ParetoRanks(const std::vector<std::vector<double>>& points);

// The indices of the rank-0 points (the front), ascending.
std::vector<size_t> ParetoFront(const std::vector<std::vector<double>>& points);

// One lower-is-better number per point, for rankings that take a scalar
// (successive halving, TPE's split into good and bad): with one objective
// the value itself; with several, the point's Pareto rank plus a tie-break
// in [0, 0.5) by crowding distance (NSGA-II), smaller where the point's
// neighbours on its front are farther away, so that within a rank the
// points that spread the front come first. A front's end points get 0.
std::vector<double> ScalarRanks(const std::vector<std::vector<double>>& points);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_PARETO_H_
