#include "coordinator/scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/sweep_spec.h"

namespace stylesweep {

Scheduler::Scheduler(Store& store, ArtifactStore& artifacts, const Clock& clock, SchedulerOptions options)
    : store_(store), artifacts_(artifacts), clock_(clock), options_(options) {}

absl::StatusOr<SubmitResult> Scheduler::Submit(const std::string& yaml, const std::string& source,
                                               const std::map<std::string, std::string>& files, bool dry_run) {
  auto spec = ParseSweep(yaml, source);
  if (!spec.ok()) return spec.status();

  // Images travel with the submission and are stored by content, so agents on
  // other machines need no shared filesystem. The names the user wrote are
  // kept beside the ids for reports.
  nlohmann::json image_names = nlohmann::json::object();
  absl::Status mapped = spec->MapImages([&](const std::string& ref) -> absl::StatusOr<std::string> {
    auto it = files.find(ref);
    if (it == files.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": image '", ref, "' was not sent with the sweep (submit with `stylesweep submit`)"));
    }
    if (it->second.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": image '", ref, "' is empty"));
    auto id = dry_run ? absl::StatusOr<std::string>(absl::StrCat("sha256:", Sha256Hex(it->second)))
                      : artifacts_.PutBlob(it->second);
    if (id.ok()) image_names[*id] = ref;
    return id;
  });
  if (!mapped.ok()) return mapped;

  auto expanded = spec->Expand();
  if (!expanded.ok()) return expanded.status();

  const int64_t now = clock_.NowMillis();
  NewSweep sweep;
  sweep.name = spec->name;
  sweep.method = spec->method;
  sweep.source = source;
  sweep.yaml = yaml;
  nlohmann::json spec_json = spec->ToJson();
  spec_json["images"] = image_names;
  spec_json["artifacts_dir"] = artifacts_.root();
  sweep.spec_json = spec_json.dump();
  sweep.max_attempts = spec->max_attempts;
  sweep.created_ms = now;

  std::vector<NewRun> runs;
  runs.reserve(expanded->size());
  for (size_t i = 0; i < expanded->size(); ++i) {
    const RunParams& params = (*expanded)[i];
    runs.push_back(NewRun{static_cast<int>(i), params.ToJson().dump(), params.Hash()});
  }

  SubmitResult result;
  if (dry_run) {
    result.sweep = SweepRecord{0, sweep.name, sweep.method, sweep.source, sweep.yaml, sweep.spec_json,
                               sweep.max_attempts, now};
    for (const NewRun& run : runs) {
      RunRecord record;
      record.index = run.index;
      record.params_json = run.params_json;
      record.params_hash = run.params_hash;
      record.created_ms = now;
      result.runs.push_back(std::move(record));
    }
    return result;
  }

  auto sweep_id = store_.CreateSweep(sweep, runs);
  if (!sweep_id.ok()) return sweep_id.status();
  auto stored = store_.GetSweep(*sweep_id);
  if (!stored.ok()) return stored.status();
  auto stored_runs = store_.ListRuns(*sweep_id);
  if (!stored_runs.ok()) return stored_runs.status();
  spdlog::info("sweep {} '{}' submitted from {}: {} runs", *sweep_id, sweep.name, source, runs.size());
  return SubmitResult{std::move(*stored), std::move(*stored_runs)};
}

absl::Status Scheduler::RegisterAgent(AgentRecord agent) {
  if (agent.name.empty()) return absl::InvalidArgumentError("an agent needs a name");
  const int64_t now = clock_.NowMillis();
  agent.registered_ms = now;
  agent.last_seen_ms = now;
  spdlog::info("agent '{}' registered from {} ({})", agent.name, agent.host, agent.description);
  return store_.UpsertAgent(agent);
}

absl::StatusOr<std::optional<LeaseGrant>> Scheduler::Lease(const std::string& agent) {
  if (absl::Status s = ExpireLeases(); !s.ok()) return s;
  const int64_t now = clock_.NowMillis();
  if (absl::Status s = store_.TouchAgent(agent, now); !s.ok()) return s;
  auto lease = store_.ClaimNextRun(agent, now, now + options_.lease_ms);
  if (!lease.ok()) return lease.status();
  if (!lease->has_value()) return std::optional<LeaseGrant>();
  const RunRecord& run = (*lease)->run;
  spdlog::info("run {} (sweep {}, #{}) attempt {} leased to '{}'", run.id, run.sweep_id, run.index,
               (*lease)->attempt, agent);
  return std::optional<LeaseGrant>(LeaseGrant{run.id, (*lease)->attempt, run.sweep_id, run.params_json});
}

absl::StatusOr<std::string> Scheduler::FetchBlob(const std::string& blob_id) const {
  return artifacts_.ReadBlob(blob_id);
}

absl::StatusOr<bool> Scheduler::Heartbeat(const std::string& agent, int64_t run_id, int attempt) {
  const int64_t now = clock_.NowMillis();
  if (absl::Status s = store_.TouchAgent(agent, now); !s.ok()) return s;
  if (run_id == 0) return false;
  absl::Status renewed = store_.RenewLease(run_id, attempt, now + options_.lease_ms);
  if (absl::IsFailedPrecondition(renewed)) {
    spdlog::warn("agent '{}' still runs run {} attempt {}, which is no longer its: telling it to stop", agent,
                 run_id, attempt);
    return true;
  }
  if (!renewed.ok()) return renewed;
  return false;
}

absl::Status Scheduler::ReportMetrics(int64_t run_id, int attempt, const std::vector<MetricRow>& rows) {
  return store_.AppendMetrics(run_id, attempt, rows);
}

absl::StatusOr<std::string> Scheduler::UploadSnapshot(int64_t run_id, int attempt, int step, bool final,
                                                      const std::string& png) {
  auto run = store_.GetRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt != attempt || run->state != RunState::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_id, " attempt ", attempt, " is no longer held: now attempt ", run->attempt, ", ",
                     std::string(RunStateName(run->state))));
  }
  auto sweep = store_.GetSweep(run->sweep_id);
  if (!sweep.ok()) return sweep.status();
  auto path = artifacts_.PutSnapshot(ArtifactStore::SweepDir(sweep->id, sweep->name), run->index, attempt, step,
                                     final, png);
  if (!path.ok()) return path.status();
  SnapshotRecord record{run_id, attempt, step, *path, final};
  if (absl::Status s = store_.AddSnapshot(record); !s.ok()) return s;
  return *path;
}

absl::Status Scheduler::Complete(int64_t run_id, int attempt, RunState state, const std::string& error) {
  if (state != RunState::kSucceeded && state != RunState::kFailed && state != RunState::kCancelled) {
    return absl::InvalidArgumentError(
        absl::StrCat("an agent may end a run as SUCCEEDED, FAILED or CANCELLED, not ", std::string(RunStateName(state))));
  }
  absl::Status s = store_.FinishRun(run_id, attempt, state, error, clock_.NowMillis());
  if (s.ok()) {
    if (state == RunState::kFailed) {
      spdlog::warn("run {} attempt {} FAILED: {}", run_id, attempt, error);
    } else {
      spdlog::info("run {} attempt {} {}", run_id, attempt, std::string(RunStateName(state)));
    }
  }
  return s;
}

absl::Status Scheduler::ExpireLeases() {
  auto expired = store_.ExpireLeases(clock_.NowMillis());
  if (!expired.ok()) return expired.status();
  for (const RunRecord& run : *expired) {
    spdlog::warn("run {} lost its agent's lease; now {}", run.id, std::string(RunStateName(run.state)));
  }
  return absl::OkStatus();
}

}  // namespace stylesweep
