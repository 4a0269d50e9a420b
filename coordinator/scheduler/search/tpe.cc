#include "coordinator/scheduler/search/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace stylesweep {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A Gaussian draw from two uniforms (Box-Muller): std::normal_distribution's
// output differs between standard libraries, and proposals must not.
double Normal(SweepRandom& random) {
  const double u1 = std::max(random.Uniform(), std::numeric_limits<double>::min());
  const double u2 = random.Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// A Parzen density on [0, 1] as hyperopt builds it: one Gaussian per
// observed coordinate plus a broad prior kernel at the centre, each truncated
// to the interval. A kernel's width is the distance to its farther
// neighbour, so sparse regions stay wide (exploration) and dense ones narrow,
// clipped below by 1/(n+1) so that a cluster never collapses onto a point.
class Parzen {
 public:
  explicit Parzen(const std::vector<double>& centres) {
    mus_ = centres;
    mus_.push_back(0.5);  // the prior
    std::vector<size_t> order(mus_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mus_[a] < mus_[b]; });
    sigmas_.assign(mus_.size(), 1.0);
    const double min_sigma = 1.0 / std::min(100.0, 1.0 + static_cast<double>(mus_.size()));
    for (size_t r = 0; r < order.size(); ++r) {
      const double left = r > 0 ? mus_[order[r]] - mus_[order[r - 1]] : mus_[order[r]];
      const double right = r + 1 < order.size() ? mus_[order[r + 1]] - mus_[order[r]] : 1.0 - mus_[order[r]];
      sigmas_[order[r]] = std::clamp(std::max(left, right), min_sigma, 1.0);
    }
    sigmas_.back() = 1.0;  // the prior stays broad
  }

  double Sample(SweepRandom& random) const {
    const size_t k = std::min(mus_.size() - 1, static_cast<size_t>(random.Uniform() * static_cast<double>(mus_.size())));
    for (int tries = 0; tries < 16; ++tries) {
      const double x = mus_[k] + sigmas_[k] * Normal(random);
      if (x >= 0 && x < 1) return x;
    }
    return random.Uniform();
  }

  double LogDensity(double x) const {
    double sum = 0;
    for (size_t i = 0; i < mus_.size(); ++i) sum += Kernel(x, mus_[i], sigmas_[i]);
    return std::log(sum / static_cast<double>(mus_.size()) + 1e-300);
  }

 private:
  // A Gaussian kernel truncated to [0, 1] and renormalised there.
  static double Kernel(double x, double mu, double sigma) {
    auto cdf = [&](double v) { return 0.5 * std::erfc(-(v - mu) / (sigma * std::sqrt(2.0))); };
    const double mass = std::max(cdf(1.0) - cdf(0.0), 1e-12);
    const double z = (x - mu) / sigma;
    return std::exp(-0.5 * z * z) / (sigma * std::sqrt(2 * kPi) * mass);
  }

  std::vector<double> mus_;
  std::vector<double> sigmas_;
};

// Category weights: observed counts plus the prior's probabilities (as one
// observation's worth), normalised.
std::vector<double> CategoryWeights(const SearchDimension& dim, const std::vector<double>& indices) {
  const size_t n = static_cast<size_t>(dim.choices);
  std::vector<double> w(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    w[i] = dim.probabilities.size() == n ? dim.probabilities[i] : 1.0 / static_cast<double>(n);
  }
  for (double x : indices) w[std::min(n - 1, static_cast<size_t>(std::max(0.0, x)))] += 1.0;
  double total = 0;
  for (double v : w) total += v;
  for (double& v : w) v /= total;
  return w;
}

}  // namespace

std::vector<double> SuggestTpe(const std::vector<SearchDimension>& space, const std::vector<Observation>& history,
                               SweepRandom& random, const TpeOptions& options) {
  std::vector<const Observation*> usable;
  for (const Observation& o : history) {
    // +infinity is a diverged run: the worst result, and worth learning from.
    if (o.point.size() == space.size() && !std::isnan(o.value) && o.value > -HUGE_VAL) usable.push_back(&o);
  }
  std::vector<double> point;
  point.reserve(space.size());
  if (static_cast<int>(usable.size()) < std::max(options.startup_trials, 2)) {
    for (const SearchDimension& dim : space) {
      point.push_back(dim.choices > 0 ? static_cast<double>(random.Choice(dim.choices, dim.probabilities))
                                      : random.Uniform());
    }
    return point;
  }

  // Ties keep history order, so the split does not depend on the sort.
  std::stable_sort(usable.begin(), usable.end(),
                   [](const Observation* a, const Observation* b) { return a->value < b->value; });
  const size_t n_good = std::max<size_t>(1, static_cast<size_t>(std::ceil(options.gamma * usable.size())));

  for (size_t d = 0; d < space.size(); ++d) {
    std::vector<double> good, bad;
    for (size_t i = 0; i < usable.size(); ++i) (i < n_good ? good : bad).push_back(usable[i]->point[d]);
    const SearchDimension& dim = space[d];
    if (dim.choices > 0) {
      const std::vector<double> l = CategoryWeights(dim, good);
      const std::vector<double> g = CategoryWeights(dim, bad);
      size_t best = 0;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int c = 0; c < options.candidates; ++c) {
        const size_t i = random.Choice(l.size(), l);
        const double score = std::log(l[i]) - std::log(g[i]);
        if (score > best_score) {
          best_score = score;
          best = i;
        }
      }
      point.push_back(static_cast<double>(best));
      continue;
    }
    const Parzen l(good);
    const Parzen g(bad);
    double best = 0.5;
    double best_score = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < options.candidates; ++c) {
      const double x = l.Sample(random);
      const double score = l.LogDensity(x) - g.LogDensity(x);
      if (score > best_score) {
        best_score = score;
        best = x;
      }
    }
    point.push_back(best);
  }
  return point;
}

}  // namespace stylesweep
