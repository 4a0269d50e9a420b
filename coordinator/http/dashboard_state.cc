#include "coordinator/http/dashboard_state.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/evaluation.h"
#include "common/run_params.h"
#include "coordinator/artifacts/artifact_store.h"

namespace stylesweep {
namespace {


using json = nlohmann::json;

constexpr RunState kRunStates[] = {RunState::kQueued,    RunState::kRunning,   RunState::kSucceeded,
                                   RunState::kFailed,    RunState::kLost,      RunState::kCancelled,
                                   RunState::kPruned};
constexpr AgentState kAgentStates[] = {AgentState::kIdle, AgentState::kBusy, AgentState::kDraining,
                                       AgentState::kLost, AgentState::kQuarantined};

// The current attempt's latest snapshot, or the one at `step`.
std::optional<SnapshotRecord> PickSnapshot(const RunRecord& run, const std::vector<SnapshotRecord>& snapshots,
                                           std::optional<int> step) {
  std::optional<SnapshotRecord> picked;
  for (const SnapshotRecord& snapshot : snapshots) {
    if (step.has_value()) {
      if (snapshot.step == *step && (!picked || snapshot.attempt > picked->attempt)) picked = snapshot;
    } else if (snapshot.attempt == run.attempt && (!picked || snapshot.step >= picked->step)) {
      picked = snapshot;
    }
  }
  return picked;
}

}  // namespace

json EvaluationJson(const RunRecord& run) {
  if (!run.has_eval()) return nullptr;
  json eval = json::object();
  for (const EvalMetricDef& def : EvalMetricDefs()) {
    eval[std::string(def.name).substr(5)] = *EvalMetricValue(run.eval, def.name);  // without "eval/"
  }
  return eval;
}

absl::StatusOr<json> DashboardState(Store& store, const DashboardOptions& options) {
  absl::StatusOr<std::vector<SweepRecord>> sweeps = store.ListSweeps(/*with_text=*/false);
  if (!sweeps.ok()) return sweeps.status();
  absl::StatusOr<std::vector<RunCount>> counts = store.CountRuns();
  if (!counts.ok()) return counts.status();
  absl::StatusOr<std::vector<AgentRecord>> agents = store.ListAgents();
  if (!agents.ok()) return agents.status();

  std::map<int64_t, std::map<RunState, int64_t>> counts_by_sweep;
  std::map<RunState, int64_t> runs_by_state;
  for (const RunCount& count : *counts) {
    counts_by_sweep[count.sweep_id][count.state] += count.runs;
    runs_by_state[count.state] += count.runs;
  }
  std::map<int64_t, std::string> sweep_names;
  json sweeps_json = json::array();
  for (auto it = sweeps->rbegin(); it != sweeps->rend(); ++it) {
    const SweepRecord& sweep = *it;
    sweep_names[sweep.id] = sweep.name;
    json by_state = json::object();
    int64_t total = 0, finished = 0;
    for (const auto& [state, n] : counts_by_sweep[sweep.id]) {
      by_state[std::string(RunStateName(state))] = n;
      total += n;
      if (IsTerminal(state)) finished += n;
    }
    sweeps_json.push_back({{"id", sweep.id},
                           {"name", sweep.name},
                           {"method", sweep.method},
                           {"paused", sweep.paused},
                           {"created_ms", sweep.created_ms},
                           {"runs", total},
                           {"finished", finished},
                           {"counts", by_state}});
  }

  std::map<AgentState, int> agents_by_state;
  double steps_per_second = 0;
  json agents_json = json::array();
  json running_json = json::array();
  for (const AgentRecord& agent : *agents) {
    const AgentState state = StateOf(agent, options.now_ms, options.agent_lost_after_ms);
    ++agents_by_state[state];
    const bool working = state == AgentState::kBusy || state == AgentState::kDraining;
    if (working) steps_per_second += agent.steps_per_second;
    agents_json.push_back({{"name", agent.name},
                           {"host", agent.host},
                           {"device", agent.device},
                           {"device_name", agent.device_name},
                           {"memory_bytes", agent.memory_bytes},
                           {"state", std::string(AgentStateName(state))},
                           {"run_id", agent.run_id},
                           {"step", agent.step},
                           {"steps", agent.steps},
                           {"steps_per_second", agent.steps_per_second},
                           {"heartbeat_age_ms", std::max<int64_t>(0, options.now_ms - agent.last_seen_ms)},
                           {"failures", agent.failures},
                           {"consecutive_failures", agent.consecutive_failures},
                           {"runs_finished", agent.runs_finished},
                           {"quarantine_reason", agent.quarantine_reason}});
    if (agent.run_id == 0) continue;
    absl::StatusOr<RunRecord> run = store.GetRun(agent.run_id);
    if (absl::IsNotFound(run.status())) continue;
    if (!run.ok()) return run.status();
    // The agent's report may be older than the run's end or a new lease.
    if (run->state != RunState::kRunning || run->agent != agent.name) continue;
    absl::StatusOr<std::vector<SnapshotRecord>> snapshots = store.ListSnapshots(run->id);
    if (!snapshots.ok()) return snapshots.status();
    const std::optional<SnapshotRecord> latest = PickSnapshot(*run, *snapshots, std::nullopt);
    const bool same_attempt = agent.attempt == run->attempt;
    json loss = nullptr;
    if (run->last_step >= 0) {
      loss = {{"total", run->total_loss}, {"content", run->content_loss}, {"style", run->style_loss},
              {"tv", run->tv_loss}};
    }
    running_json.push_back(
        {{"run_id", run->id},
         {"sweep_id", run->sweep_id},
         {"sweep", sweep_names.count(run->sweep_id) ? sweep_names[run->sweep_id] : ""},
         {"index", run->index},
         {"attempt", run->attempt},
         {"agent", agent.name},
         {"step", std::max(same_attempt ? agent.step : 0, run->last_step)},
         {"steps", same_attempt && agent.steps > 0 ? agent.steps : PlannedSteps(run->params_json)},
         {"steps_per_second", same_attempt ? agent.steps_per_second : 0.0},
         {"loss", loss},
         {"eval_step", run->has_eval() ? json(run->eval_step) : json()},
         {"eval", EvaluationJson(*run)},
         {"snapshot", latest ? json(absl::StrCat("/api/snapshot/", run->id, "?step=", latest->step)) : json()},
         {"snapshot_step", latest ? json(latest->step) : json()}});
  }

  json agent_totals = json::object();
  for (AgentState state : kAgentStates) agent_totals[std::string(AgentStateName(state))] = agents_by_state[state];
  json run_totals = json::object();
  for (RunState state : kRunStates) run_totals[std::string(RunStateName(state))] = runs_by_state[state];
  return json{{"now_ms", options.now_ms},
              {"totals", {{"agents", agent_totals}, {"runs", run_totals}, {"steps_per_second", steps_per_second}}},
              {"sweeps", sweeps_json},
              {"running", running_json},
              {"agents", agents_json}};
}

absl::StatusOr<std::string> SnapshotFile(Store& store, const std::string& artifacts_dir, int64_t run_id,
                                         std::optional<int> step) {
  absl::StatusOr<RunRecord> run = store.GetRun(run_id);
  if (!run.ok()) return run.status();
  absl::StatusOr<std::vector<SnapshotRecord>> snapshots = store.ListSnapshots(run_id);
  if (!snapshots.ok()) return snapshots.status();
  const std::optional<SnapshotRecord> picked = PickSnapshot(*run, *snapshots, step);
  if (!picked.has_value()) {
    return absl::NotFoundError(step.has_value() ? absl::StrCat("run ", run_id, " has no snapshot at step ", *step)
                                                : absl::StrCat("run ", run_id, " has no snapshot yet"));
  }
  // The same checks as the gRPC FetchArtifact: no absolute path, no "..",
  // no symbolic link out of the directory.
  absl::StatusOr<std::string> file = ArtifactStore(artifacts_dir).ResolveArtifact(picked->path);
  if (absl::IsInvalidArgument(file.status())) {
    return absl::PermissionDeniedError(
        absl::StrCat("snapshot of run ", run_id, " is recorded outside the artifacts directory"));
  }
  return file;
}

}  // namespace stylesweep
