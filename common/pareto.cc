#include "common/pareto.h"

#include <cmath>
#include <limits>

namespace stylesweep {
namespace {
double Ordered(double v) { return std::isnan(v) ? std::numeric_limits<double>::infinity() : v; }
}  // namespace

bool Dominates(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  bool better = false;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = Ordered(a[i]), y = Ordered(b[i]);
    if (x > y) return false;
    if (x < y) better = true;
  }
  return better;
}

std::vector<int> ParetoRanks(const std::vector<std::vector<double>>& points) {
  const size_t n = points.size();
  std::vector<int> dominated_by(n, 0);          // how many points dominate i
  std::vector<std::vector<size_t>> dominates(n);  // the points i dominates
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (Dominates(points[i], points[j])) {
        dominates[i].push_back(j);
        ++dominated_by[j];
      } else if (Dominates(points[j], points[i])) {
        dominates[j].push_back(i);
        ++dominated_by[i];
      }
    }
  }
  std::vector<int> rank(n, -1);
  std::vector<size_t> current;
  for (size_t i = 0; i < n; ++i) {
    if (dominated_by[i] == 0) current.push_back(i);
  }
  for (int r = 0; !current.empty(); ++r) {
    std::vector<size_t> next;
    for (size_t i : current) {
      rank[i] = r;
      for (size_t j : dominates[i]) {
        if (--dominated_by[j] == 0) next.push_back(j);
      }
    }
    current = std::move(next);
  }
  return rank;
}

std::vector<size_t> ParetoFront(const std::vector<std::vector<double>>& points) {
  const std::vector<int> ranks = ParetoRanks(points);
  std::vector<size_t> front;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] == 0) front.push_back(i);
  }
  return front;
}

}  // namespace stylesweep
