#ifndef STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_
#define STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/sweep_spec.h"
#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/store/store.h"

namespace stylesweep {

struct SchedulerOptions {
  int64_t lease_ms = 30000;       // a run is LOST when its holder is silent this long
  int64_t heartbeat_ms = 2000;    // how often agents are asked to heartbeat
  size_t max_runs_per_sweep = kMaxGridSize;  // the largest grid or run_cap a submission may ask for
  // An agent whose runs fail this many times in a row is quarantined: it
  // gets no more runs until a user releases it. 0: never.
  int quarantine_after = 3;
};

// How an agent says a run ended.
struct RunOutcome {
  RunState state = RunState::kSucceeded;  // SUCCEEDED, FAILED, CANCELLED or PRUNED
  std::string error;
  std::string log_tail;        // FAILED: the agent's last log lines
  bool out_of_memory = false;  // FAILED on the device's memory: try another agent
  // FAILED because a loss became NaN or infinite at this step: the run's
  // fault, not the agent's (no retry elsewhere, no failure counted).
  int diverged_step = -1;
};

// An agent as `stylesweep agents` shows it.
struct AgentView {
  AgentRecord agent;
  AgentState state = AgentState::kIdle;
};

// What the coordinator tells an agent about the run it holds.
enum class RunDirective {
  kContinue,
  kStop,   // the run is no longer this agent's: drop it, report nothing more
  kPrune,  // early termination: stop, keep the last image as final, end as PRUNED
};

struct SubmitOptions {
  bool dry_run = false;          // validate and expand; store nothing
  bool allow_duplicate = false;  // store a sweep whose YAML and images were submitted before
  // Weights references as written -> absolute paths on the agents' machines
  // (the client resolves relative paths against the sweep file). A reference
  // missing here must already be absolute.
  std::map<std::string, std::string> weights_paths;
};

// What `stylesweep cancel | pause | resume | retry --failed` ask for.
enum class SweepAction { kCancel, kPause, kResume, kRetryFailed };

struct SweepControlResult {
  SweepRecord sweep;  // after the change
  int runs = 0;       // runs cancelled or queued again
};

struct SubmitResult {
  SweepRecord sweep;              // id 0 for a dry run
  SweepTotals totals;
  std::vector<RunRecord> runs;    // the first kSubmitReplyRuns of the expansion
  int runs_total = 0;             // the whole expansion
  std::vector<std::string> warnings;  // SweepSpec::Warnings(): accepted, but likely not what was meant
};

// A reply never carries more runs than this; the rest are paged (GetSweep).
inline constexpr int kSubmitReplyRuns = 1000;

// What ReportMetrics made of a batch of losses.
struct MetricsVerdict {
  RunDirective directive = RunDirective::kContinue;  // kStop: the run diverged and has ended
  std::vector<int> refused_steps;  // rows outside 0..steps, or after the step that diverged
};

// What DeleteSweep removed.
struct DeleteResult {
  SweepRecord sweep;
  int runs = 0;
  int64_t metric_rows = 0;
  int blobs_removed = 0;
  int64_t bytes_freed = 0;
};

struct LeaseGrant {
  int64_t run_id = 0;
  int attempt = 0;
  int64_t sweep_id = 0;
  std::string params_json;        // images as blob ids
  std::vector<int> report_steps;  // the run's early-termination rungs
};

// The coordinator's logic, free of gRPC: turns submissions into runs, hands
// runs to agents under leases, and records what agents report. Every method
// validates its input and returns a Status a user can act on. Thread-safe
// (the store serialises writes; the scheduler's only state is a cache of
// parsed sweep text).
class Scheduler {
 public:
  Scheduler(Store& store, ArtifactStore& artifacts, const Clock& clock, SchedulerOptions options = {});

  const SchedulerOptions& options() const { return options_; }
  int64_t NowMillis() const { return clock_.NowMillis(); }

  // Parses, validates and expands a sweep; stores the images (`files` maps
  // each image reference as written in the YAML to its bytes), the sweep and
  // its runs in one go: a grid's every point, a random sweep's run_cap draws
  // (from a seed recorded with the sweep), and none yet for bayes, whose runs
  // Lease proposes as results arrive. A dry run stores nothing and returns the
  // same runs. A sweep with the same YAML text and image bytes as a stored
  // one is AlreadyExists unless options.allow_duplicate. Trusting no client,
  // it refuses with InvalidArgument, naming the image and storing nothing,
  // images over the byte limits, and any that is not a PNG or JPEG by its
  // header or declares more than kMaxImagePixels (see common/image_header.h).
  absl::StatusOr<SubmitResult> Submit(const std::string& yaml, const std::string& source,
                                      const std::map<std::string, std::string>& files, SubmitOptions options);
  absl::StatusOr<SubmitResult> Submit(const std::string& yaml, const std::string& source,
                                      const std::map<std::string, std::string>& files, bool dry_run) {
    return Submit(yaml, source, files, SubmitOptions{dry_run, false, {}});
  }

  absl::Status RegisterAgent(AgentRecord agent);

  // The next queued run for `agent`, or nullopt when there is none. First
  // lets each bayes sweep below its run_cap and max_concurrent, with no run
  // waiting, propose one run from its finished ones (exactly once per draw,
  // also with several coordinators' threads racing).
  // nullopt too while the agent is quarantined; `quarantined`, when given,
  // then receives why (else it is cleared).
  absl::StatusOr<std::optional<LeaseGrant>> Lease(const std::string& agent, std::string* quarantined = nullptr);

  absl::StatusOr<std::string> FetchBlob(const std::string& blob_id) const;

  // Every call below that names a run's attempt is refused PermissionDenied,
  // changing nothing, unless that attempt was leased to `agent`; when it was
  // but is no longer current, FailedPrecondition (or kStop).

  // Renews the lease. kStop when the run is no longer that agent's; kPrune
  // when early termination has decided it should end.
  // Also records what the agent reports doing (`activity`).
  absl::StatusOr<RunDirective> Heartbeat(const std::string& agent, const AgentActivity& activity);
  absl::StatusOr<RunDirective> Heartbeat(const std::string& agent, int64_t run_id, int attempt) {
    return Heartbeat(agent, AgentActivity{run_id, attempt});
  }

  // Stores the losses, then applies the sweep's early termination at each
  // rung the rows reach (see early_stop.h). kPrune when the run should end
  // (decided now or before); else kContinue. Rows whose step lies outside
  // 0..steps are refused one by one (the others are stored). A row with a
  // loss that is NaN or infinite ends the run as diverged at its step
  // (FAILED, see Complete), refusing the rows after it: kStop.
  absl::StatusOr<MetricsVerdict> ReportMetrics(const std::string& agent, int64_t run_id, int attempt,
                                               const std::vector<MetricRow>& rows);

  // Stores the PNG and records it; returns its path relative to the
  // artifacts. InvalidArgument, writing nothing, for bytes that are not a
  // PNG by their header, declare more than kMaxImagePixels or are larger
  // than kMaxSnapshotBytes, or a step outside 0..steps. The
  // same bytes again return the stored path; other bytes for a stored step
  // are AlreadyExists (see Store::AddSnapshot).
  absl::StatusOr<std::string> UploadSnapshot(const std::string& agent, int64_t run_id, int attempt, int step,
                                             bool final, const std::string& png);

  // Ends the attempt as SUCCEEDED (which needs the losses of the run's last
  // step), FAILED, CANCELLED or PRUNED (which needs early termination's
  // verdict), in one transaction (Store::CompleteAttempt): retries count
  // once. A PRUNED or diverged run keeps its losses; without a final
  // snapshot, its latest snapshot becomes the final one. A FAILED one counts
  // against its agent (see quarantine_after), unless it diverged (the run's
  // fault: it fails for good) or ran out of device memory: then the run is
  // queued again for an agent that has not tried it, and fails for good only
  // when no live agent is left to try.
  absl::Status Complete(const std::string& agent, int64_t run_id, int attempt, const RunOutcome& outcome);
  absl::Status Complete(const std::string& agent, int64_t run_id, int attempt, RunState state,
                        const std::string& error) {
    return Complete(agent, run_id, attempt, RunOutcome{state, error, "", false});
  }
  // Cancels, pauses, resumes a sweep (by id or name), or queues its FAILED
  // and LOST runs again. Idempotent: repeating an action changes nothing.
  absl::StatusOr<SweepControlResult> Control(const std::string& sweep, SweepAction action);

  // The agent stops before the run ends: queue it again now (Store::ReleaseRun).
  absl::Status Release(const std::string& agent, int64_t run_id, int attempt, const std::string& reason);

  // Removes a sweep: its rows (Store::DeleteSweep), its artifacts directory
  // and the image blobs no other sweep uses. FailedPrecondition while runs
  // are QUEUED or RUNNING, unless `cancel_first`, which cancels them first.
  absl::StatusOr<DeleteResult> Delete(const std::string& sweep, bool cancel_first);

  // Every agent that registered, with its state now, by name.
  absl::StatusOr<std::vector<AgentView>> ListAgents();
  // Why the agent is quarantined; empty when it is not. NotFound when unknown.
  absl::StatusOr<std::string> QuarantineOf(const std::string& agent);
  // Lifts an agent's quarantine (idempotent). Returns whether it was
  // quarantined.
  absl::StatusOr<bool> ReleaseAgent(const std::string& agent);

  // Re-queues (or marks LOST) runs whose lease has expired. Called before
  // every lease and periodically by the server.
  absl::Status ExpireLeases();

 private:
  // What the scheduler reads often from a sweep's text, which never changes
  // once stored: parsed once per sweep and kept, so leases and reports cost
  // the same however large the sweep's YAML is or however many are stored.
  struct SweepFacts;

  // Proposes (and stores) the next run of each bayes sweep that may have one.
  absl::Status ProposeRuns();
  absl::StatusOr<bool> ProposeRun(const SweepRecord& sweep);
  absl::StatusOr<std::shared_ptr<const SweepFacts>> Facts(int64_t sweep_id);
  void ForgetFacts(int64_t sweep_id);

  Store& store_;
  ArtifactStore& artifacts_;
  const Clock& clock_;
  SchedulerOptions options_;

  absl::Mutex facts_mu_;
  std::map<int64_t, std::shared_ptr<const SweepFacts>> facts_ ABSL_GUARDED_BY(facts_mu_);
  // Held shared by whatever writes files of a sweep (submissions, snapshot
  // uploads) and exclusively by Delete, so that no write lands in what a
  // deletion is removing, nor a new sweep on a blob being removed.
  absl::Mutex files_mu_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_SCHEDULER_SCHEDULER_H_
