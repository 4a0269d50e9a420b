#include "common/pareto.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

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

std::vector<double> ScalarRanks(const std::vector<std::vector<double>>& points) {
  std::vector<double> values(points.size(), 0);
  if (points.empty()) return values;
  if (points.front().size() == 1) {
    for (size_t i = 0; i < points.size(); ++i) values[i] = points[i].empty() ? 0 : Ordered(points[i][0]);
    return values;
  }
  const std::vector<int> ranks = ParetoRanks(points);
  const int max_rank = ranks.empty() ? 0 : *std::max_element(ranks.begin(), ranks.end());
  for (int r = 0; r <= max_rank; ++r) {
    std::vector<size_t> front;
    for (size_t i = 0; i < points.size(); ++i) {
      if (ranks[i] == r) front.push_back(i);
    }
    std::vector<double> crowding(points.size(), 0);
    const size_t dims = points[front.front()].size();
    for (size_t d = 0; d < dims; ++d) {
      std::vector<size_t> order = front;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return Ordered(points[a][d]) < Ordered(points[b][d]); });
      const double lo = Ordered(points[order.front()][d]), hi = Ordered(points[order.back()][d]);
      crowding[order.front()] = crowding[order.back()] = std::numeric_limits<double>::infinity();
      if (!(hi > lo) || !std::isfinite(hi - lo)) continue;
      for (size_t k = 1; k + 1 < order.size(); ++k) {
        crowding[order[k]] += (Ordered(points[order[k + 1]][d]) - Ordered(points[order[k - 1]][d])) / (hi - lo);
      }
    }
    for (size_t i : front) values[i] = r + 0.5 / (1 + crowding[i]);  // 1/(1+inf) = 0
  }
  return values;
}

}  // namespace stylesweep
