#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/client/coordinator_client.h"
#include "nlohmann/json.hpp"
#include "rpc/evaluation_proto.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {
namespace {

bool IsRetryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel, std::string target, GrpcClientOptions options)
      : stub_(v1::Coordinator::NewStub(channel)), target_(std::move(target)), options_(std::move(options)) {}

  absl::StatusOr<AgentSettings> Register(const AgentIdentity& agent) override {
    v1::RegisterAgentRequest request;
    request.set_name(agent.name);
    request.set_host(agent.host);
    request.set_device(agent.device);
    request.set_description(agent.description);
    request.set_device_name(agent.device_name);
    request.set_memory_bytes(agent.memory_bytes);
    request.set_slots(agent.slots);
    v1::RegisterAgentResponse response;
    if (absl::Status s = Call("RegisterAgent", &v1::Coordinator::Stub::RegisterAgent, request, &response); !s.ok()) {
      return s;
    }
    return AgentSettings{response.heartbeat_interval_ms(), response.lease_ms()};
  }

  absl::StatusOr<LeaseReply> Lease(const std::string& agent) override {
    v1::LeaseRunRequest request;
    request.set_agent(agent);
    v1::LeaseRunResponse response;
    // Not retried here: a claim whose answer was lost would leave a run held
    // by nobody until its lease expired. The runner's loop asks again.
    if (absl::Status s = Call("LeaseRun", &v1::Coordinator::Stub::LeaseRun, request, &response, /*retry=*/false);
        !s.ok()) {
      return s;
    }
    if (!response.granted()) return LeaseReply{std::nullopt, response.quarantined()};
    nlohmann::json params_json = nlohmann::json::parse(response.params_json(), nullptr, /*allow_exceptions=*/false);
    auto params = RunParams::FromJson(params_json);
    if (!params.ok()) {
      return absl::InternalError(absl::StrCat("the coordinator sent run ", response.run_id(),
                                              " with parameters this agent cannot read (is it older than the "
                                              "coordinator?): ",
                                              params.status().message()));
    }
    RunLease lease{response.run_id(), response.attempt(), response.sweep_id(), *params, {}};
    lease.report_steps.assign(response.report_steps().begin(), response.report_steps().end());
    return LeaseReply{std::move(lease), ""};
  }

  absl::StatusOr<std::string> FetchBlob(const std::string& blob_id) override {
    v1::FetchBlobRequest request;
    request.set_blob_id(blob_id);
    v1::FetchBlobResponse response;
    if (absl::Status s = Call("FetchBlob", &v1::Coordinator::Stub::FetchBlob, request, &response); !s.ok()) return s;
    return std::move(*response.mutable_data());
  }

  absl::StatusOr<RunVerdict> Heartbeat(const std::string& agent, const RunProgress& progress) override {
    v1::HeartbeatRequest request;
    request.set_agent(agent);
    request.set_run_id(progress.run_id);
    request.set_attempt(progress.attempt);
    request.set_step(progress.step);
    request.set_steps(progress.steps);
    request.set_steps_per_second(progress.steps_per_second);
    request.set_draining(progress.draining);
    v1::HeartbeatResponse response;
    // One try: the next heartbeat is the retry.
    grpc::ClientContext context;
    PrepareContext(context, options_.security, options_.call_timeout_ms);
    grpc::Status status = stub_->Heartbeat(&context, request, &response);
    if (!status.ok()) return Failure(status);
    if (response.stop_run()) return RunVerdict::kStop;
    return response.prune() ? RunVerdict::kPrune : RunVerdict::kContinue;
  }

  absl::StatusOr<MetricsReply> ReportMetrics(const std::string& agent, int64_t run_id, int attempt,
                                             const std::vector<StepMetrics>& rows) override {
    v1::ReportMetricsRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    for (const StepMetrics& m : rows) {
      v1::StepLoss* loss = request.add_losses();
      loss->set_step(m.step);
      loss->set_content(m.content);
      loss->set_style(m.style);
      loss->set_tv(m.tv);
      loss->set_total(m.total);
      loss->set_step_seconds(m.step_seconds);
      if (m.eval) ToProto(*m.eval, loss->mutable_eval());
    }
    v1::ReportMetricsResponse response;
    if (absl::Status s = Call("ReportMetrics", &v1::Coordinator::Stub::ReportMetrics, request, &response); !s.ok()) {
      return s;
    }
    MetricsReply reply;
    reply.verdict = response.stop_run() ? RunVerdict::kStop
                    : response.prune()  ? RunVerdict::kPrune
                                        : RunVerdict::kContinue;
    reply.refused_steps.assign(response.refused_steps().begin(), response.refused_steps().end());
    return reply;
  }

  absl::Status UploadSnapshot(const std::string& agent, int64_t run_id, int attempt, int step, bool final,
                              const std::string& png) override {
    v1::UploadSnapshotRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_step(step);
    request.set_final(final);
    request.set_png(png);
    v1::UploadSnapshotResponse response;
    return Call("UploadSnapshot", &v1::Coordinator::Stub::UploadSnapshot, request, &response);
  }

  absl::Status Complete(const std::string& agent, int64_t run_id, int attempt, const RunEnd& end) override {
    v1::CompleteRunRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_state(std::string(RunStateName(end.state)));
    request.set_error(end.error);
    request.set_log_tail(end.log_tail);
    request.set_out_of_memory(end.out_of_memory);
    request.set_diverged(end.diverged);
    request.set_diverged_step(end.diverged_step);
    v1::CompleteRunResponse response;
    return Call("CompleteRun", &v1::Coordinator::Stub::CompleteRun, request, &response);
  }

  absl::Status Release(const std::string& agent, int64_t run_id, int attempt, const std::string& reason) override {
    v1::ReleaseRunRequest request;
    request.set_agent(agent);
    request.set_run_id(run_id);
    request.set_attempt(attempt);
    request.set_reason(reason);
    v1::ReleaseRunResponse response;
    return Call("ReleaseRun", &v1::Coordinator::Stub::ReleaseRun, request, &response);
  }

 private:
  template <typename Request, typename Response>
  using Method = grpc::Status (v1::Coordinator::Stub::*)(grpc::ClientContext*, const Request&, Response*);

  // The retried RPCs are idempotent on the coordinator's side (keyed by run
  // and attempt, or by name), so repeating one after a lost answer is safe.
  template <typename Request, typename Response>
  absl::Status Call(const char* name, Method<Request, Response> method, const Request& request, Response* response,
                    bool retry = true) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.retry_budget_ms);
    int64_t backoff_ms = options_.initial_backoff_ms;
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext context;
      PrepareContext(context, options_.security, options_.call_timeout_ms);
      grpc::Status status = (stub_.get()->*method)(&context, request, response);
      if (status.ok() || !retry || !IsRetryable(status)) return Failure(status);
      // Full jitter: agents that lost the coordinator together do not return
      // together.
      const int64_t sleep_ms = std::uniform_int_distribution<int64_t>(0, backoff_ms)(rng);
      if (std::chrono::steady_clock::now() + std::chrono::milliseconds(sleep_ms) > give_up) {
        return absl::UnavailableError(absl::StrCat(name, " failed after ", attempt, " tries: ", Failure(status).message()));
      }
      spdlog::debug("{} failed ({}), retrying in {} ms", name, status.error_message(), sleep_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
    }
  }

  // A failed call as the user should read it: an unreachable coordinator
  // says why it may be (TLS on one side only, an untrusted certificate,
  // nothing listening).
  absl::Status Failure(const grpc::Status& status) const {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) return UnreachableError(status, target_, options_.security);
    return FromGrpcStatus(status);
  }

  std::unique_ptr<v1::Coordinator::Stub> stub_;
  std::string target_;
  GrpcClientOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorClient>> CreateGrpcCoordinatorClient(const std::string& target,
                                                                               const GrpcClientOptions& options) {
  auto channel = MakeChannel(target, options.security);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<CoordinatorClient>(new GrpcCoordinatorClient(*channel, target, options));
}

}  // namespace stylesweep
