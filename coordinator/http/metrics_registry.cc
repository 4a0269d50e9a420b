#include "coordinator/http/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace stylesweep {
namespace {

std::string FormatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[400];
  // The shortest text that reads back as the same double; in plain
  // decimals over the range people read that way (le="0.0005", a Unix
  // time), else with an exponent.
  const double magnitude = std::fabs(value);
  const bool plain = value == 0 || (magnitude >= 1e-5 && magnitude < 1e16);
  auto [end, ec] = plain ? std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed)
                         : std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, ec == std::errc() ? end : buffer);
}

void AppendEscaped(std::string& out, std::string_view text, bool quotes) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

MetricLabels With(MetricLabels labels, std::string name, std::string value) {
  labels.emplace_back(std::move(name), std::move(value));
  return labels;
}

}  // namespace

void ExpositionWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  AppendEscaped(text_, help, /*quotes=*/false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void ExpositionWriter::Sample(std::string_view name, const MetricLabels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) text_ += ',';
      text_ += labels[i].first;
      text_ += "=\"";
      AppendEscaped(text_, labels[i].second, /*quotes=*/true);
      text_ += '"';
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += FormatNumber(value);
  text_ += '\n';
}

Counter::Counter(std::string name, std::string help, bool unlabelled)
    : name_(std::move(name)), help_(std::move(help)) {
  if (unlabelled) values_[{}] = 0;
}

void Counter::Increment(const MetricLabels& labels, double by) {
  if (!(by >= 0)) return;
  absl::MutexLock lock(&mu_);
  values_[labels] += by;
}

double Counter::Value(const MetricLabels& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void Counter::WriteTo(ExpositionWriter& out) const {
  out.Family(name_, "counter", help_);
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) out.Sample(name_, labels, value);
}

Histogram::Histogram(std::string name, std::string help, std::vector<double> upper_bounds)
    : name_(std::move(name)), help_(std::move(help)), upper_bounds_(std::move(upper_bounds)) {}

void Histogram::Observe(const MetricLabels& labels, double value) {
  if (std::isnan(value)) return;
  // The first bound at or above the value; past the end is the +Inf bucket.
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  absl::MutexLock lock(&mu_);
  Series& series = series_[labels];
  if (series.buckets.empty()) series.buckets.assign(upper_bounds_.size() + 1, 0);
  ++series.buckets[bucket];
  series.sum += value;
  ++series.count;
}

void Histogram::WriteTo(ExpositionWriter& out) const {
  out.Family(name_, "histogram", help_);
  const std::string bucket_name = name_ + "_bucket";
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, series] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < upper_bounds_.size(); ++i) {
      cumulative += series.buckets[i];
      out.Sample(bucket_name, With(labels, "le", FormatNumber(upper_bounds_[i])), static_cast<double>(cumulative));
    }
    out.Sample(bucket_name, With(labels, "le", "+Inf"), static_cast<double>(series.count));
    out.Sample(name_ + "_sum", labels, series.sum);
    out.Sample(name_ + "_count", labels, static_cast<double>(series.count));
  }
}

Counter& MetricsRegistry::AddCounter(std::string name, std::string help, bool unlabelled) {
  absl::MutexLock lock(&mu_);
  counters_.emplace_back(new Counter(std::move(name), std::move(help), unlabelled));
  order_.emplace_back(false, counters_.size() - 1);
  return *counters_.back();
}

Histogram& MetricsRegistry::AddHistogram(std::string name, std::string help, std::vector<double> upper_bounds) {
  std::sort(upper_bounds.begin(), upper_bounds.end());
  upper_bounds.erase(std::unique(upper_bounds.begin(), upper_bounds.end()), upper_bounds.end());
  upper_bounds.erase(std::remove_if(upper_bounds.begin(), upper_bounds.end(),
                                    [](double b) { return !std::isfinite(b); }),
                     upper_bounds.end());
  absl::MutexLock lock(&mu_);
  histograms_.emplace_back(new Histogram(std::move(name), std::move(help), std::move(upper_bounds)));
  order_.emplace_back(true, histograms_.size() - 1);
  return *histograms_.back();
}

void MetricsRegistry::WriteTo(ExpositionWriter& out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [is_histogram, index] : order_) {
    if (is_histogram) {
      histograms_[index]->WriteTo(out);
    } else {
      counters_[index]->WriteTo(out);
    }
  }
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace stylesweep
