#ifndef STYLESWEEP_COORDINATOR_HTTP_METRICS_REGISTRY_H_
#define STYLESWEEP_COORDINATOR_HTTP_METRICS_REGISTRY_H_

// Counters and histograms in the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Debian 12
// packages no Prometheus client for C++, and the coordinator needs only these
// two kinds plus gauges it computes at scrape time, so this is small on
// purpose.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stylesweep {

// Label names and values of one series, in the order they are printed.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Writes the text format: a family's HELP and TYPE lines, then its samples.
// Escapes label values (\\, \", \n) and help text (\\, \n); prints numbers
// the way Prometheus parses them (+Inf, -Inf, NaN). Not thread-safe: one
// writer per scrape.
class ExpositionWriter {
 public:
  // `type`: counter, gauge or histogram.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const MetricLabels& labels, double value);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// A counter family: one monotonically increasing value per label set.
// Thread-safe.
class Counter {
 public:
  // Adds `by` (>= 0; a negative amount is ignored: counters never go down).
  void Increment(const MetricLabels& labels = {}, double by = 1);
  double Value(const MetricLabels& labels = {}) const;

 private:
  friend class MetricsRegistry;
  Counter(std::string name, std::string help, bool unlabelled);
  void WriteTo(ExpositionWriter& out) const;

  const std::string name_;
  const std::string help_;
  mutable absl::Mutex mu_;
  std::map<MetricLabels, double> values_ ABSL_GUARDED_BY(mu_);
};

// A histogram family: per label set, cumulative counts of observations at or
// below each upper bound, plus their sum and count. Thread-safe.
class Histogram {
 public:
  void Observe(const MetricLabels& labels, double value);

 private:
  friend class MetricsRegistry;
  Histogram(std::string name, std::string help, std::vector<double> upper_bounds);
  void WriteTo(ExpositionWriter& out) const;

  struct Series {
    std::vector<uint64_t> buckets;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };

  const std::string name_;
  const std::string help_;
  const std::vector<double> upper_bounds_;  // ascending, finite
  mutable absl::Mutex mu_;
  std::map<MetricLabels, Series> series_ ABSL_GUARDED_BY(mu_);
};

// Owns the counters and histograms of a process and prints them in the order
// they were added. Adding is meant for start-up; incrementing, observing and
// WriteTo may then run from any thread at once. Thread-safe.
class MetricsRegistry {
 public:
  // `name` should follow Prometheus' conventions (a counter ends in _total,
  // base units: _seconds, _bytes). An unlabelled counter is printed as 0
  // before its first increment, so rates start from a known point. The
  // returned objects live as long as the registry.
  Counter& AddCounter(std::string name, std::string help, bool unlabelled = true);
  // `upper_bounds` are sorted and made unique; +Inf is implied.
  Histogram& AddHistogram(std::string name, std::string help, std::vector<double> upper_bounds);

  void WriteTo(ExpositionWriter& out) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Counter>> counters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Histogram>> histograms_ ABSL_GUARDED_BY(mu_);
  // The order of addition, as (is_histogram, index).
  std::vector<std::pair<bool, size_t>> order_ ABSL_GUARDED_BY(mu_);
};

// Upper bounds, in seconds, for the latency of calls that mostly take
// milliseconds (SQLite writes) but may take seconds (image uploads).
std::vector<double> LatencyBucketsSeconds();

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_METRICS_REGISTRY_H_
