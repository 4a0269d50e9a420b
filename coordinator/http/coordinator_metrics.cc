#include "coordinator/http/coordinator_metrics.h"

#include <filesystem>
#include <map>
#include <system_error>

#include "absl/strings/strip.h"

namespace stylesweep {
namespace {

constexpr RunState kRunStates[] = {RunState::kQueued,    RunState::kRunning,   RunState::kSucceeded,
                                   RunState::kFailed,    RunState::kLost,      RunState::kCancelled,
                                   RunState::kPruned};
constexpr AgentState kAgentStates[] = {AgentState::kIdle, AgentState::kBusy, AgentState::kDraining,
                                       AgentState::kLost, AgentState::kQuarantined};

// Bytes of a file, 0 when it does not exist (no -wal file between checkpoints
// is normal).
uint64_t SizeOrZero(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics()
    : rpc_duration_(registry_.AddHistogram(
          "stylesweep_rpc_duration_seconds",
          "Time gRPC calls took from arrival to status, by method and status code.", LatencyBucketsSeconds())),
      metric_rows_(registry_.AddCounter("stylesweep_metric_rows_total",
                                        "Loss rows (one per run step) agents delivered in successful reports.")),
      steps_(registry_.AddCounter("stylesweep_steps_total",
                                  "Optimiser steps agents reported having run (step 0, the initial image, excluded).")),
      snapshots_(registry_.AddCounter("stylesweep_snapshots_total", "Snapshot images stored.")) {}

void CoordinatorMetrics::RecordRpc(const std::string& method, const std::string& code, double seconds) {
  absl::string_view name = method;
  absl::ConsumePrefix(&name, "/");
  rpc_duration_.Observe({{"method", std::string(name)}, {"code", code}}, seconds);
}

void CoordinatorMetrics::RecordMetricRows(int rows, int steps) {
  metric_rows_.Increment({}, rows);
  steps_.Increment({}, steps);
}

void CoordinatorMetrics::RecordSnapshot() { snapshots_.Increment(); }

absl::StatusOr<std::string> ScrapeMetrics(Store& store, const CoordinatorMetrics& metrics,
                                          const ScrapeSources& sources) {
  absl::StatusOr<std::vector<AgentRecord>> agents = store.ListAgents();
  if (!agents.ok()) return agents.status();
  absl::StatusOr<std::vector<RunCount>> counts = store.CountRuns();
  if (!counts.ok()) return counts.status();

  ExpositionWriter out;
  std::map<AgentState, int> agents_by_state;
  double steps_per_second = 0;
  for (const AgentRecord& agent : *agents) {
    const AgentState state = StateOf(agent, sources.now_ms, sources.agent_lost_after_ms);
    ++agents_by_state[state];
    if (state == AgentState::kBusy || state == AgentState::kDraining) steps_per_second += agent.steps_per_second;
  }
  out.Family("stylesweep_agents", "gauge", "Agents known to the coordinator, by state (lost: silent for a lease).");
  for (AgentState state : kAgentStates) {
    out.Sample("stylesweep_agents", {{"state", std::string(AgentStateName(state))}}, agents_by_state[state]);
  }
  out.Family("stylesweep_steps_per_second", "gauge",
             "Optimiser steps per second over all agents running a run, as they last reported.");
  out.Sample("stylesweep_steps_per_second", {}, steps_per_second);

  std::map<RunState, int64_t> runs_by_state;
  for (const RunCount& count : *counts) runs_by_state[count.state] += count.runs;
  out.Family("stylesweep_runs", "gauge", "Runs of every sweep, by state.");
  for (RunState state : kRunStates) {
    out.Sample("stylesweep_runs", {{"state", std::string(RunStateName(state))}}, runs_by_state[state]);
  }
  out.Family("stylesweep_sweep_runs", "gauge", "Runs of each sweep, by state (states without runs left out).");
  for (const RunCount& count : *counts) {
    out.Sample("stylesweep_sweep_runs",
               {{"sweep_id", std::to_string(count.sweep_id)},
                {"sweep", count.sweep_name},
                {"state", std::string(RunStateName(count.state))}},
               count.runs);
  }

  uint64_t db_bytes = 0;
  if (!sources.db_path.empty() && sources.db_path != ":memory:") {
    db_bytes = SizeOrZero(sources.db_path) + SizeOrZero(sources.db_path + "-wal");
  }
  out.Family("stylesweep_database_size_bytes", "gauge", "Size of the SQLite database file and its write-ahead log.");
  out.Sample("stylesweep_database_size_bytes", {}, static_cast<double>(db_bytes));
  out.Family("stylesweep_process_start_time_seconds", "gauge",
             "When the coordinator started, in seconds since the Unix epoch.");
  out.Sample("stylesweep_process_start_time_seconds", {}, sources.process_start_seconds);

  metrics.registry().WriteTo(out);
  return out.text();
}

}  // namespace stylesweep
