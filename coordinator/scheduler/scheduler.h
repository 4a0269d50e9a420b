#ifndef STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_
#define STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/store/store.h"

namespace stylesweep {

struct SchedulerOptions {
  int64_t lease_ms = 30000;       // a run is LOST when its holder is silent this long
  int64_t heartbeat_ms = 2000;    // how often agents are asked to heartbeat
};

struct SubmitResult {
  SweepRecord sweep;              // id 0 for a dry run
  std::vector<RunRecord> runs;
};

struct LeaseGrant {
  int64_t run_id = 0;
  int attempt = 0;
  int64_t sweep_id = 0;
  std::string params_json;        // images as blob ids
};

// The coordinator's logic, free of gRPC: turns submissions into runs, hands
// runs to agents under leases, and records what agents report. Every method
// validates its input and returns a Status a user can act on. Thread-safe
// (the store serialises writes; the scheduler keeps no mutable state).
class Scheduler {
 public:
  Scheduler(Store& store, ArtifactStore& artifacts, const Clock& clock, SchedulerOptions options = {});

  const SchedulerOptions& options() const { return options_; }

  // Parses, validates and expands a sweep; stores the images (`files` maps
  // each image reference as written in the YAML to its bytes), the sweep and
  // all its runs in one go. A dry run stores nothing.
  absl::StatusOr<SubmitResult> Submit(const std::string& yaml, const std::string& source,
                                      const std::map<std::string, std::string>& files, bool dry_run);

  absl::Status RegisterAgent(AgentRecord agent);

  // The next queued run for `agent`, or nullopt when there is none.
  absl::StatusOr<std::optional<LeaseGrant>> Lease(const std::string& agent);

  absl::StatusOr<std::string> FetchBlob(const std::string& blob_id) const;

  // Renews the lease. Returns true when the agent must stop the run (it is no
  // longer that agent's).
  absl::StatusOr<bool> Heartbeat(const std::string& agent, int64_t run_id, int attempt);

  absl::Status ReportMetrics(int64_t run_id, int attempt, const std::vector<MetricRow>& rows);

  // Stores the PNG and records it; returns its path relative to the artifacts.
  absl::StatusOr<std::string> UploadSnapshot(int64_t run_id, int attempt, int step, bool final,
                                             const std::string& png);

  absl::Status Complete(int64_t run_id, int attempt, RunState state, const std::string& error);

  // Re-queues (or marks LOST) runs whose lease has expired. Called before
  // every lease and periodically by the server.
  absl::Status ExpireLeases();

 private:
  Store& store_;
  ArtifactStore& artifacts_;
  const Clock& clock_;
  SchedulerOptions options_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_
