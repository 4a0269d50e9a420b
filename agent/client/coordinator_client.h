#ifndef STYLESWEEP_AGENT_CLIENT_COORDINATOR_CLIENT_H_
#define STYLESWEEP_AGENT_CLIENT_COORDINATOR_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/engine/engine.h"
#include "common/run_params.h"
#include "common/run_state.h"
#include "rpc/transport.h"

namespace stylesweep {

struct AgentIdentity {
  std::string name;
  std::string host;
  std::string device;       // cpu, cuda:0
  std::string description;  // engine details, for humans
  std::string device_name;  // e.g. "NVIDIA H200"
  int64_t memory_bytes = 0;
  int slots = 1;            // runs it holds at once
};

struct AgentSettings {
  int64_t heartbeat_ms = 2000;
  int64_t lease_ms = 30000;
};

struct RunLease {
  int64_t run_id = 0;
  int attempt = 0;
  int64_t sweep_id = 0;
  RunParams params;  // content and style are blob ids
  // Report losses right after these steps, and heed the verdict before the
  // next one (early termination decides there).
  std::vector<int> report_steps;
};

// The coordinator's answer to a lease request.
struct LeaseReply {
  std::optional<RunLease> run;  // nullopt: nothing to do now
  // Non-empty: no run is given because this agent is quarantined, and why.
  std::string quarantined;
};

// What an agent reports with each heartbeat, for `stylesweep agents`.
struct RunProgress {
  int64_t run_id = 0;  // 0: idle
  int attempt = 0;
  int step = 0;
  int steps = 0;
  double steps_per_second = 0;
  bool draining = false;
};

// How a run ended, as the agent reports it.
struct RunEnd {
  RunState state = RunState::kSucceeded;
  std::string error;
  std::string log_tail;        // FAILED: the agent's last log lines
  bool out_of_memory = false;  // FAILED on device memory: another agent should try
  // FAILED because a loss became NaN or infinite at diverged_step: the run's
  // own fault; it ends for good, keeping its finite rows and final image.
  bool diverged = false;
  int diverged_step = 0;
};

// What the coordinator says about a run an agent holds.
enum class RunVerdict {
  kContinue,
  kStop,   // no longer ours: drop it and report nothing more
  kPrune,  // early termination: stop, send the latest image as final, complete as PRUNED
};

// The coordinator's answer to a batch of losses.
struct MetricsReply {
  // kStop when the coordinator ended the run (a row's loss was not finite:
  // it is FAILED as diverged), else kContinue or kPrune.
  RunVerdict verdict = RunVerdict::kContinue;
  // Rows the coordinator refused (their step lies outside 0..steps); the
  // others were stored. Sending them again cannot help.
  std::vector<int> refused_steps;
};

// What an agent asks of the coordinator, in domain types. Implementations
// are thread-safe: the runner heartbeats from one thread while another
// reports.
//
// The calls about a run (Heartbeat, ReportMetrics, UploadSnapshot, Complete,
// Release) fail with FAILED_PRECONDITION when the attempt was this agent's
// but is no longer current, and PERMISSION_DENIED when it never was: either
// way the agent must stop the run, and repeating the call cannot help.
// UploadSnapshot fails with INVALID_ARGUMENT for bytes that are not a PNG or
// a step outside 0..steps, and ALREADY_EXISTS for other bytes at a step
// already stored.
class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;
  virtual absl::StatusOr<AgentSettings> Register(const AgentIdentity& agent) = 0;
  virtual absl::StatusOr<LeaseReply> Lease(const std::string& agent) = 0;
  virtual absl::StatusOr<std::string> FetchBlob(const std::string& blob_id) = 0;
  virtual absl::StatusOr<RunVerdict> Heartbeat(const std::string& agent, const RunProgress& progress) = 0;
  virtual absl::StatusOr<MetricsReply> ReportMetrics(const std::string& agent, int64_t run_id, int attempt,
                                                     const std::vector<StepMetrics>& rows) = 0;
  virtual absl::Status UploadSnapshot(const std::string& agent, int64_t run_id, int attempt, int step, bool final,
                                      const std::string& png) = 0;
  virtual absl::Status Complete(const std::string& agent, int64_t run_id, int attempt, const RunEnd& end) = 0;
  // Hands a run this agent will not finish back to the coordinator, which
  // queues it again at once.
  virtual absl::Status Release(const std::string& agent, int64_t run_id, int attempt, const std::string& reason) = 0;
};

struct GrpcClientOptions {
  ClientSecurity security;
  int64_t call_timeout_ms = 10000;  // deadline of each attempt of each call
  // Give up a call after retrying this long. Short: an agent keeps what it
  // could not send and tries again itself for as long as the coordinator
  // is away (Runner), so a call need only ride out a blip.
  int64_t retry_budget_ms = 5000;
  int64_t initial_backoff_ms = 200;
  int64_t max_backoff_ms = 5000;
};

// The gRPC client. Every call has a deadline; calls that are safe to repeat
// are retried on UNAVAILABLE and DEADLINE_EXCEEDED with exponential back-off
// and full jitter, within the retry budget.
absl::StatusOr<std::unique_ptr<CoordinatorClient>> CreateGrpcCoordinatorClient(const std::string& target,
                                                                               const GrpcClientOptions& options);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_CLIENT_COORDINATOR_CLIENT_H_
