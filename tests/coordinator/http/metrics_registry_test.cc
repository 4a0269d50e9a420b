#include "coordinator/http/metrics_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Render(const MetricsRegistry& registry) {
  ExpositionWriter out;
  registry.WriteTo(out);
  return out.text();
}

TEST(MetricsRegistryTest, CounterHasHelpTypeAndStartsAtZero) {
  MetricsRegistry registry;
  Counter& rows = registry.AddCounter("stylesweep_metric_rows_total", "Loss rows delivered.");
  EXPECT_EQ(Render(registry),
            "# HELP stylesweep_metric_rows_total Loss rows delivered.\n"
            "# TYPE stylesweep_metric_rows_total counter\n"
            "stylesweep_metric_rows_total 0\n");
  rows.Increment({}, 3);
  rows.Increment();
  rows.Increment({}, -10);  // counters never go down
  EXPECT_THAT(Render(registry), HasSubstr("\nstylesweep_metric_rows_total 4\n"));
  EXPECT_EQ(rows.Value(), 4);
}

TEST(MetricsRegistryTest, LabelledCounterPrintsOneSeriesPerLabelSet) {
  MetricsRegistry registry;
  Counter& calls = registry.AddCounter("calls_total", "Calls.", /*unlabelled=*/false);
  EXPECT_EQ(Render(registry), "# HELP calls_total Calls.\n# TYPE calls_total counter\n");
  calls.Increment({{"method", "a"}});
  calls.Increment({{"method", "b"}}, 2);
  calls.Increment({{"method", "a"}});
  EXPECT_EQ(Render(registry),
            "# HELP calls_total Calls.\n# TYPE calls_total counter\n"
            "calls_total{method=\"a\"} 2\n"
            "calls_total{method=\"b\"} 2\n");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  Histogram& latency = registry.AddHistogram("rpc_seconds", "Latency.", {1, 0.125, 0.5, 0.125});  // sorted, deduplicated
  const MetricLabels labels = {{"method", "Lease"}, {"code", "OK"}};
  // Binary fractions, so the sum is exact.
  latency.Observe(labels, 0.0625);
  latency.Observe(labels, 0.125);  // on a bound: counts in that bucket (le is "less or equal")
  latency.Observe(labels, 0.25);
  latency.Observe(labels, 8);      // only in +Inf
  latency.Observe(labels, std::nan(""));  // ignored
  EXPECT_EQ(Render(registry),
            "# HELP rpc_seconds Latency.\n"
            "# TYPE rpc_seconds histogram\n"
            "rpc_seconds_bucket{method=\"Lease\",code=\"OK\",le=\"0.125\"} 2\n"
            "rpc_seconds_bucket{method=\"Lease\",code=\"OK\",le=\"0.5\"} 3\n"
            "rpc_seconds_bucket{method=\"Lease\",code=\"OK\",le=\"1\"} 3\n"
            "rpc_seconds_bucket{method=\"Lease\",code=\"OK\",le=\"+Inf\"} 4\n"
            "rpc_seconds_sum{method=\"Lease\",code=\"OK\"} 8.4375\n"
            "rpc_seconds_count{method=\"Lease\",code=\"OK\"} 4\n");
}

TEST(MetricsRegistryTest, FamiliesPrintInTheOrderTheyWereAdded) {
  MetricsRegistry registry;
  registry.AddHistogram("b_seconds", "B.", {1});
  registry.AddCounter("a_total", "A.");
  const std::string text = Render(registry);
  EXPECT_LT(text.find("b_seconds"), text.find("a_total"));
}

TEST(ExpositionWriterTest, EscapesLabelValuesAndHelp) {
  ExpositionWriter out;
  out.Family("runs", "gauge", "Runs by \"sweep\"\\state\nsecond line");
  out.Sample("runs", {{"sweep", "a \"quoted\" back\\slash\nnewline"}}, 2);
  EXPECT_EQ(out.text(),
            "# HELP runs Runs by \"sweep\"\\\\state\\nsecond line\n"
            "# TYPE runs gauge\n"
            "runs{sweep=\"a \\\"quoted\\\" back\\\\slash\\nnewline\"} 2\n");
}

TEST(ExpositionWriterTest, PrintsNumbersAsPrometheusReadsThem) {
  ExpositionWriter out;
  out.Sample("a", {}, 0.1);
  out.Sample("b", {}, 1e21);
  out.Sample("c", {}, std::numeric_limits<double>::infinity());
  out.Sample("d", {}, -std::numeric_limits<double>::infinity());
  out.Sample("e", {}, std::nan(""));
  out.Sample("f", {}, 1234567);
  out.Sample("g", {}, 1.7e9);    // a Unix time, in full
  out.Sample("h", {}, 0.0005);   // a bucket bound, as people write it
  out.Sample("i", {}, 2.5e-7);
  out.Sample("j", {}, 0);
  EXPECT_EQ(out.text(),
            "a 0.1\nb 1e+21\nc +Inf\nd -Inf\ne NaN\nf 1234567\ng 1700000000\nh 0.0005\ni 2.5e-07\nj 0\n");
  EXPECT_THAT(out.text(), Not(HasSubstr("inf\n")));
}

}  // namespace
}  // namespace stylesweep
