#include "coordinator/rpc/coordinator_service.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/auth/grpc_auth.h"
#include "coordinator/rpc/convert.h"
#include "rpc/transport.h"

namespace stylesweep {

// Declares `caller`: who makes the call, once its credential is found to
// allow `method` (coordinator/auth/roles.h); returns the refusal otherwise.
#define STYLESWEEP_AUTHORIZE(context, method)                                   \
  absl::StatusOr<Caller> caller = CallerOf(*(context), authenticator_, method); \
  if (!caller.ok()) return ToGrpcStatus(caller.status())

// As STYLESWEEP_AUTHORIZE, then checks that the caller may act as the agent
// the request names.
#define STYLESWEEP_AUTHORIZE_AGENT(context, method, agent)                                          \
  STYLESWEEP_AUTHORIZE(context, method);                                                           \
  if (absl::Status s = ActAsAgent(*caller, agent, std::string_view(method) == "LeaseRun"); !s.ok()) \
  return ToGrpcStatus(s)

CoordinatorService::CoordinatorService(Scheduler& scheduler, Store& store, std::string artifacts_dir,
                                       Authenticator& authenticator)
    : scheduler_(scheduler), store_(store), artifacts_dir_(std::move(artifacts_dir)),
      artifacts_(artifacts_dir_),
      authenticator_(authenticator) {}

absl::Status CoordinatorService::ActAsAgent(const Caller& caller, const std::string& agent, bool for_lease) {
  if (absl::Status s = Authenticator::AuthorizeAgent(caller, agent); !s.ok()) return s;
  // The name must also be registered by this very credential: two
  // credentials allowed the same name (overlapping PREFIX*) cannot act for
  // each other's agent.
  absl::StatusOr<AgentRecord> registered = store_.GetAgent(agent);
  if (absl::IsNotFound(registered.status()) && !for_lease) {
    // Nothing of a run can be an unknown agent's (the protocol's rule for
    // attempts that were never the caller's). A lease answers NotFound, which
    // tells a real agent to register again.
    return absl::PermissionDeniedError(absl::StrCat("agent '", agent, "' has not registered"));
  }
  if (!registered.ok()) return registered.status();
  if (registered->credential != caller.credential) {
    return absl::PermissionDeniedError(absl::StrCat("agent '", agent, "' is registered with another credential"));
  }
  return absl::OkStatus();
}

grpc::Status CoordinatorService::SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
                                             v1::SubmitSweepResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "SubmitSweep");
  std::map<std::string, std::string> files;
  for (const v1::FileBlob& file : request->files()) files[file.path()] = file.data();
  SubmitOptions options{request->dry_run(), request->allow_duplicate(), {}};
  options.weights_paths.insert(request->weights_paths().begin(), request->weights_paths().end());
  auto result = scheduler_.Submit(request->yaml(), request->source(), files, options);
  if (!result.ok()) return ToGrpcStatus(result.status());
  ToProto(result->sweep, result->totals, response->mutable_sweep());
  for (const RunRecord& run : result->runs) ToProto(run, response->add_runs());
  response->set_runs_total(result->runs_total);
  for (const std::string& warning : result->warnings) response->add_warnings(warning);
  return grpc::Status::OK;
}

namespace {

constexpr int kDefaultPageRuns = 1000;
constexpr int kLossesPerReply = 100000;  // about 5 MB
constexpr int kMaxPageSweeps = 10000;    // about 640 KB of summaries
constexpr size_t kMaxPageSpecBytes = 16 << 20;
constexpr int kMaxPageRuns = 5000;

// A page token: the last id or index the previous reply gave (empty: from
// the start, -1).
template <typename Int>
grpc::Status ParsePageToken(const std::string& token, Int* after) {
  if (token.empty()) return grpc::Status::OK;
  if (!absl::SimpleAtoi(token, after) || *after < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("page_token '", token.substr(0, 32), "' is not one a previous reply gave"));
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status CoordinatorService::GetSweep(grpc::ServerContext* context, const v1::GetSweepRequest* request,
                                          v1::GetSweepResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "GetSweep");
  response->set_artifacts_dir(artifacts_dir_);
  if (request->sweep().empty()) {
    // Every sweep's summary, a page of sweeps at a time, from two queries
    // whatever their number of runs.
    if (request->page_size() < 0 || request->page_size() > kMaxPageSweeps) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("page_size must be 0 (", kMaxPageSweeps, ") to ", kMaxPageSweeps));
    }
    int64_t after = 0;
    if (grpc::Status s = ParsePageToken(request->page_token(), &after); !s.ok()) return s;
    const int limit = request->page_size() == 0 ? kMaxPageSweeps : request->page_size();
    auto sweeps = store_.ListSweepsPage(after, limit + 1, request->with_spec());
    if (!sweeps.ok()) return ToGrpcStatus(sweeps.status());
    bool more = static_cast<int>(sweeps->size()) > limit;
    if (more) sweeps->pop_back();
    if (sweeps->empty()) return grpc::Status::OK;
    auto totals = store_.TotalSweepsBetween(sweeps->front().id, sweeps->back().id);
    if (!totals.ok()) return ToGrpcStatus(totals.status());
    auto total = totals->begin();
    size_t spec_bytes = 0;
    for (const SweepRecord& sweep : *sweeps) {
      if (response->sweeps_size() > 0 && spec_bytes + sweep.spec_json.size() > kMaxPageSpecBytes) {
        more = true;  // the rest of the page next time
        break;
      }
      spec_bytes += sweep.spec_json.size();
      while (total != totals->end() && total->sweep_id < sweep.id) ++total;
      const bool has = total != totals->end() && total->sweep_id == sweep.id;
      ToProto(sweep, has ? *total : SweepTotals{sweep.id, {}, 0, 0}, response->add_sweeps());
    }
    if (more) response->set_next_page_token(absl::StrCat(response->sweeps(response->sweeps_size() - 1).id()));
    return grpc::Status::OK;
  }
  if (request->page_size() < 0 || request->page_size() > kMaxPageRuns) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("page_size must be 0 (", kDefaultPageRuns, ") to ", kMaxPageRuns));
  }
  RunPageRequest page;
  page.limit = request->page_size() == 0 ? kDefaultPageRuns : request->page_size();
  if (grpc::Status s = ParsePageToken(request->page_token(), &page.after_index); !s.ok()) return s;
  for (const std::string& name : request->states()) {
    std::optional<RunState> state = ParseRunState(name);
    if (!state.has_value()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("unknown run state '", name.substr(0, 32), "'"));
    }
    page.states.push_back(*state);
  }
  auto sweep = store_.FindSweep(request->sweep());
  if (!sweep.ok()) return ToGrpcStatus(sweep.status());
  auto totals = store_.TotalSweeps(sweep->id);
  if (!totals.ok()) return ToGrpcStatus(totals.status());
  ToProto(*sweep, totals->front(), response->add_sweeps());
  if (request->no_runs()) return grpc::Status::OK;
  const int limit = page.limit;
  page.limit = limit + 1;  // one more says whether another page follows
  auto runs = store_.ListRunsPage(sweep->id, page);
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  if (static_cast<int>(runs->size()) > limit) {
    runs->resize(limit);
    response->set_next_page_token(absl::StrCat(runs->back().index));
  }
  for (const RunRecord& run : *runs) ToProto(run, response->add_runs());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ControlSweep(grpc::ServerContext* context, const v1::ControlSweepRequest* request,
                                              v1::ControlSweepResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "ControlSweep");
  SweepAction action;
  switch (request->action()) {
    case v1::ControlSweepRequest::CANCEL:
      action = SweepAction::kCancel;
      break;
    case v1::ControlSweepRequest::PAUSE:
      action = SweepAction::kPause;
      break;
    case v1::ControlSweepRequest::RESUME:
      action = SweepAction::kResume;
      break;
    case v1::ControlSweepRequest::RETRY_FAILED:
      action = SweepAction::kRetryFailed;
      break;
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no action: cancel, pause, resume or retry");
  }
  auto result = scheduler_.Control(request->sweep(), action);
  if (!result.ok()) return ToGrpcStatus(result.status());
  auto totals = store_.TotalSweeps(result->sweep.id);
  if (!totals.ok()) return ToGrpcStatus(totals.status());
  ToProto(result->sweep, totals->front(), response->mutable_sweep());
  response->set_runs(result->runs);
  response->set_paused(result->sweep.paused);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::DeleteSweep(grpc::ServerContext* context, const v1::DeleteSweepRequest* request,
                                             v1::DeleteSweepResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "DeleteSweep");
  auto deleted = scheduler_.Delete(request->sweep(), request->cancel_first());
  if (!deleted.ok()) return ToGrpcStatus(deleted.status());
  response->set_sweep_id(deleted->sweep.id);
  response->set_name(deleted->sweep.name);
  response->set_runs(deleted->runs);
  response->set_metric_rows(deleted->metric_rows);
  response->set_blobs_removed(deleted->blobs_removed);
  response->set_bytes_freed(deleted->bytes_freed);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::RegisterAgent(grpc::ServerContext* context,
                                               const v1::RegisterAgentRequest* request,
                                               v1::RegisterAgentResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "RegisterAgent");
  if (absl::Status s = Authenticator::AuthorizeAgent(*caller, request->name()); !s.ok()) return ToGrpcStatus(s);
  AgentRecord agent;
  agent.name = request->name();
  agent.host = request->host();
  agent.device = request->device();
  agent.description = request->description();
  agent.device_name = request->device_name();
  agent.memory_bytes = request->memory_bytes();
  agent.slots = request->slots() > 0 ? request->slots() : 1;
  agent.credential = caller->credential;
  if (absl::Status s = scheduler_.RegisterAgent(agent); !s.ok()) return ToGrpcStatus(s);
  response->set_heartbeat_interval_ms(scheduler_.options().heartbeat_ms);
  response->set_lease_ms(scheduler_.options().lease_ms);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::LeaseRun(grpc::ServerContext* context, const v1::LeaseRunRequest* request,
                                          v1::LeaseRunResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "LeaseRun", request->agent());
  std::string quarantined;
  auto lease = scheduler_.Lease(request->agent(), &quarantined);
  if (!lease.ok()) return ToGrpcStatus(lease.status());
  if (!lease->has_value()) {
    response->set_granted(false);
    response->set_quarantined(quarantined);
    return grpc::Status::OK;
  }
  const LeaseGrant& grant = **lease;
  response->set_granted(true);
  response->set_run_id(grant.run_id);
  response->set_attempt(grant.attempt);
  response->set_sweep_id(grant.sweep_id);
  response->set_params_json(grant.params_json);
  response->set_lease_ms(scheduler_.options().lease_ms);
  for (int step : grant.report_steps) response->add_report_steps(step);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::FetchBlob(grpc::ServerContext* context, const v1::FetchBlobRequest* request,
                                           v1::FetchBlobResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "FetchBlob");
  auto data = scheduler_.FetchBlob(request->blob_id());
  if (!data.ok()) return ToGrpcStatus(data.status());
  response->set_data(std::move(*data));
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                                           v1::HeartbeatResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "Heartbeat", request->agent());
  AgentActivity activity;
  activity.run_id = request->run_id();
  activity.attempt = request->attempt();
  activity.step = request->step();
  activity.steps = request->steps();
  // A speed estimate, not a loss: one that is not a finite number (0/0 at
  // the first step) counts as none rather than failing the heartbeat.
  const double speed = request->steps_per_second();
  activity.steps_per_second = std::isfinite(speed) && speed > 0 ? speed : 0;
  activity.draining = request->draining();
  auto directive = scheduler_.Heartbeat(request->agent(), activity);
  if (!directive.ok()) return ToGrpcStatus(directive.status());
  response->set_stop_run(*directive == RunDirective::kStop);
  response->set_prune(*directive == RunDirective::kPrune);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ReportMetrics(grpc::ServerContext* context,
                                               const v1::ReportMetricsRequest* request,
                                               v1::ReportMetricsResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "ReportMetrics", request->agent());
  auto verdict =
      scheduler_.ReportMetrics(request->agent(), request->run_id(), request->attempt(), FromProto(request->losses()));
  if (!verdict.ok()) return ToGrpcStatus(verdict.status());
  response->set_prune(verdict->directive == RunDirective::kPrune);
  response->set_stop_run(verdict->directive == RunDirective::kStop);
  for (int step : verdict->refused_steps) response->add_refused_steps(step);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::UploadSnapshot(grpc::ServerContext* context,
                                                const v1::UploadSnapshotRequest* request,
                                                v1::UploadSnapshotResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "UploadSnapshot", request->agent());
  auto path = scheduler_.UploadSnapshot(request->agent(), request->run_id(), request->attempt(), request->step(),
                                        request->final(), request->png());
  if (!path.ok()) return ToGrpcStatus(path.status());
  response->set_path(*path);
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::CompleteRun(grpc::ServerContext* context, const v1::CompleteRunRequest* request,
                                             v1::CompleteRunResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "CompleteRun", request->agent());
  auto state = ParseRunState(request->state());
  if (!state.has_value()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("unknown run state '", request->state(), "'"));
  }
  if (request->diverged() && request->diverged_step() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a diverged run names the step it diverged at (>= 0)");
  }
  RunOutcome outcome{*state, request->error(), request->log_tail(), request->out_of_memory(),
                     request->diverged() ? request->diverged_step() : -1};
  return ToGrpcStatus(scheduler_.Complete(request->agent(), request->run_id(), request->attempt(), outcome));
}

grpc::Status CoordinatorService::ReleaseRun(grpc::ServerContext* context, const v1::ReleaseRunRequest* request,
                                            v1::ReleaseRunResponse* response) {
  STYLESWEEP_AUTHORIZE_AGENT(context, "ReleaseRun", request->agent());
  return ToGrpcStatus(scheduler_.Release(request->agent(), request->run_id(), request->attempt(), request->reason()));
}

grpc::Status CoordinatorService::ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                                            v1::ListAgentsResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "ListAgents");
  auto agents = scheduler_.ListAgents();
  if (!agents.ok()) return ToGrpcStatus(agents.status());
  for (const AgentView& view : *agents) ToProto(view, response->add_agents());
  response->set_now_ms(scheduler_.NowMillis());
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::ReleaseAgent(grpc::ServerContext* context, const v1::ReleaseAgentRequest* request,
                                              v1::ReleaseAgentResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "ReleaseAgent");
  auto released = scheduler_.ReleaseAgent(request->name());
  if (!released.ok()) return ToGrpcStatus(released.status());
  response->set_was_quarantined(*released);
  auto agents = scheduler_.ListAgents();
  if (!agents.ok()) return ToGrpcStatus(agents.status());
  for (const AgentView& view : *agents) {
    if (view.agent.name == request->name()) ToProto(view, response->mutable_agent());
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::GetRun(grpc::ServerContext* context, const v1::GetRunRequest* request,
                                        v1::GetRunResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "GetRun");
  auto run = store_.GetRun(request->run_id());
  if (!run.ok()) return ToGrpcStatus(run.status());
  auto sweep = store_.GetSweep(run->sweep_id);
  if (!sweep.ok()) return ToGrpcStatus(sweep.status());
  ToProto(*run, response->mutable_run());
  ToProto(*sweep, SweepTotals{sweep->id, {}, 0, 0}, response->mutable_sweep());
  response->set_artifacts_dir(artifacts_dir_);
  if (request->losses() && run->attempt > 0) {  // a run never leased has no losses
    // One more than a reply carries says whether more follow.
    auto metrics = store_.GetMetricsPage(run->id, 0, request->losses_from_step(), kLossesPerReply + 1);
    if (!metrics.ok()) return ToGrpcStatus(metrics.status());
    if (static_cast<int>(metrics->size()) > kLossesPerReply) {
      response->set_more_losses(true);
      response->set_next_losses_step(metrics->back().step);
      metrics->pop_back();
    }
    for (const MetricRow& row : *metrics) ToProto(row, response->add_losses());
  }
  if (request->snapshots()) {
    auto snapshots = store_.ListSnapshots(run->id);
    if (!snapshots.ok()) return ToGrpcStatus(snapshots.status());
    for (const SnapshotRecord& snapshot : *snapshots) ToProto(snapshot, response->add_snapshots());
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                                               v1::FetchArtifactResponse* response) {
  STYLESWEEP_AUTHORIZE(context, "FetchArtifact");
  auto data = artifacts_.ReadArtifact(request->path());
  if (!data.ok()) return ToGrpcStatus(data.status());
  response->set_data(std::move(*data));
  return grpc::Status::OK;
}

}  // namespace stylesweep
