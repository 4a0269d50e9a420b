#ifndef STYLESWEEP_COORDINATOR_RPC_COORDINATOR_SERVICE_H_
#define STYLESWEEP_COORDINATOR_RPC_COORDINATOR_SERVICE_H_

#include <string>

#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/auth/authenticator.h"
#include "coordinator/scheduler/scheduler.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {

// The gRPC face of the Scheduler. Each handler checks the caller's credential
// against the role table (coordinator/auth/grpc_auth.h) and, for agents'
// calls, that it may act as the agent named and registered it; then converts the
// request to domain types, calls the scheduler and maps the result back
// (conversion in convert.cc). It uses the synchronous API on purpose: the
// store blocks on SQLite, which must not happen on callback threads.
// Thread-safe.
class CoordinatorService final : public v1::Coordinator::Service {
 public:
  CoordinatorService(Scheduler& scheduler, Store& store, std::string artifacts_dir, Authenticator& authenticator);

  grpc::Status SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepResponse* response) override;
  grpc::Status GetSweep(grpc::ServerContext* context, const v1::GetSweepRequest* request,
                        v1::GetSweepResponse* response) override;
  grpc::Status ControlSweep(grpc::ServerContext* context, const v1::ControlSweepRequest* request,
                            v1::ControlSweepResponse* response) override;
  grpc::Status DeleteSweep(grpc::ServerContext* context, const v1::DeleteSweepRequest* request,
                           v1::DeleteSweepResponse* response) override;
  grpc::Status RegisterAgent(grpc::ServerContext* context, const v1::RegisterAgentRequest* request,
                             v1::RegisterAgentResponse* response) override;
  grpc::Status LeaseRun(grpc::ServerContext* context, const v1::LeaseRunRequest* request,
                        v1::LeaseRunResponse* response) override;
  grpc::Status FetchBlob(grpc::ServerContext* context, const v1::FetchBlobRequest* request,
                         v1::FetchBlobResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status ReportMetrics(grpc::ServerContext* context, const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override;
  grpc::Status UploadSnapshot(grpc::ServerContext* context, const v1::UploadSnapshotRequest* request,
                              v1::UploadSnapshotResponse* response) override;
  grpc::Status CompleteRun(grpc::ServerContext* context, const v1::CompleteRunRequest* request,
                           v1::CompleteRunResponse* response) override;
  grpc::Status ReleaseRun(grpc::ServerContext* context, const v1::ReleaseRunRequest* request,
                          v1::ReleaseRunResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;
  grpc::Status ReleaseAgent(grpc::ServerContext* context, const v1::ReleaseAgentRequest* request,
                            v1::ReleaseAgentResponse* response) override;

  grpc::Status GetRun(grpc::ServerContext* context, const v1::GetRunRequest* request,
                      v1::GetRunResponse* response) override;
  grpc::Status FetchArtifact(grpc::ServerContext* context, const v1::FetchArtifactRequest* request,
                             v1::FetchArtifactResponse* response) override;

 private:
  Scheduler& scheduler_;
  Store& store_;
  std::string artifacts_dir_;
  const ArtifactStore artifacts_;  // reads only: FetchArtifact
  // OK when `caller` may act as `agent` and registered it. An agent that
  // never registered is NotFound for a lease, PermissionDenied otherwise.
  absl::Status ActAsAgent(const Caller& caller, const std::string& agent, bool for_lease);

  Authenticator& authenticator_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_RPC_COORDINATOR_SERVICE_H_
