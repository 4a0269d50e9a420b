#ifndef STYLESWEEP_COORDINATOR_HTTP_COORDINATOR_METRICS_H_
#define STYLESWEEP_COORDINATOR_HTTP_COORDINATOR_METRICS_H_

// What the coordinator's /metrics shows. Two sources:
//  - counters and histograms updated as calls are served (CoordinatorMetrics,
//    fed by the gRPC interceptor in coordinator/rpc/metrics_interceptor.h);
//  - gauges read from the store at each scrape (ScrapeMetrics): agents and
//    runs by state, the steps per second agents report, the database's size.
// Every name starts with stylesweep_ and uses base units.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/http/metrics_registry.h"
#include "coordinator/store/store.h"

namespace stylesweep {

// The coordinator's counters. Thread-safe (see MetricsRegistry).
class CoordinatorMetrics {
 public:
  CoordinatorMetrics();
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // One served gRPC call: `method` as gRPC names it ("/pkg.Service/Method",
  // printed without the leading slash), `code` the status code's name
  // ("OK", "NOT_FOUND"), `seconds` from its arrival to its status.
  void RecordRpc(const std::string& method, const std::string& code, double seconds);
  // A ReportMetrics call that succeeded with `rows` loss rows, `steps` of
  // them for optimiser steps (step 0, the initial image, is not one). A
  // retried call counts again: these measure the work agents deliver.
  void RecordMetricRows(int rows, int steps);
  // An UploadSnapshot call that succeeded.
  void RecordSnapshot();

  const MetricsRegistry& registry() const { return registry_; }

 private:
  MetricsRegistry registry_;
  Histogram& rpc_duration_;
  Counter& metric_rows_;
  Counter& steps_;
  Counter& snapshots_;
};

// What a scrape needs beyond the store.
struct ScrapeSources {
  std::string db_path;              // its size, with its -wal file, is reported; ":memory:": 0
  int64_t now_ms = 0;               // to tell lost agents (StateOf)
  int64_t agent_lost_after_ms = 0;  // the lease length
  double process_start_seconds = 0; // since the Unix epoch
};

// The whole /metrics page: the gauges read from `store` now, then
// `metrics`' counters and histograms. Costs two small queries (agents, runs
// counted by sweep and state) whatever the number of runs. Fails only when
// the store does.
absl::StatusOr<std::string> ScrapeMetrics(Store& store, const CoordinatorMetrics& metrics,
                                          const ScrapeSources& sources);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_COORDINATOR_METRICS_H_
