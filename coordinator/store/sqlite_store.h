#ifndef STYLESWEEP_COORDINATOR_STORE_SQLITE_STORE_H_
#define STYLESWEEP_COORDINATOR_STORE_SQLITE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/sqlite.h"
#include "coordinator/store/store.h"

namespace stylesweep {

// The Store on one SQLite connection. Made by OpenSqliteStore (store.h), which
// sets WAL mode, synchronous=NORMAL, a 5 s busy timeout and foreign keys, and
// brings the schema up to date from the migrations compiled in.
//
// Beyond store.h's contract:
//  - An id that names no sweep or run is NotFound, for reads too (ListRuns,
//    ListAttempts, GetMetrics, ListSnapshots), so "no such run" and "a run
//    with nothing yet" can be told apart.
//  - A read-only store fails every write FailedPrecondition and never
//    migrates; its reads see what a writer beside it has committed.
//  - RenewLease never moves a lease earlier: a retried heartbeat arriving
//    after a newer one leaves the later expiry.
//  - ClaimNextRun also clears final_snapshot: it belongs to the attempt that
//    made it, like the latest losses.
//  - ExpireLeases records the expiry as the run's error, also when it
//    re-queues (the next claim clears it), and sets finished_ms on a run it
//    leaves LOST. Runs come back in claim order.
//  - UpsertAgent replaces every field of an existing agent.
//
// Thread-safe: every call holds one mutex for its whole transaction.
class SqliteStore final : public Store {
 public:
  // See OpenSqliteStore.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const std::string& path, const SqliteStoreOptions& options);

  absl::StatusOr<int64_t> CreateSweep(const NewSweep& sweep, const std::vector<NewRun>& runs) override;
  absl::StatusOr<int64_t> AddRun(int64_t sweep_id, int expected_draws, const NewRun& run, int64_t now_ms) override;
  absl::StatusOr<std::optional<SweepRecord>> FindSweepByContentHash(const std::string& content_hash) override;
  absl::StatusOr<SweepRecord> GetSweep(int64_t sweep_id) override;
  absl::StatusOr<SweepRecord> FindSweep(const std::string& id_or_name) override;
  absl::StatusOr<std::vector<SweepRecord>> ListSweeps(bool with_text = true) override;
  absl::StatusOr<std::vector<SweepRecord>> ListOpenSearchSweeps() override;
  absl::StatusOr<std::vector<SweepTotals>> TotalSweeps(int64_t sweep_id) override;
  absl::StatusOr<std::vector<SweepTotals>> TotalSweepsBetween(int64_t first_id, int64_t last_id) override;
  absl::StatusOr<std::vector<SweepRecord>> ListSweepsPage(int64_t after_id, int limit, bool with_text) override;
  absl::StatusOr<DeletedSweep> DeleteSweep(int64_t sweep_id) override;
  absl::StatusOr<RunRecord> GetRun(int64_t run_id) override;
  absl::StatusOr<std::vector<RunRecord>> ListRuns(int64_t sweep_id) override;
  absl::StatusOr<std::vector<RunRecord>> ListRunsPage(int64_t sweep_id, const RunPageRequest& page) override;
  absl::StatusOr<std::vector<RunCount>> CountRuns() override;
  absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t run_id) override;
  absl::StatusOr<std::vector<MetricRow>> GetMetrics(int64_t run_id, int attempt) override;
  absl::StatusOr<std::vector<MetricRow>> GetMetricsPage(int64_t run_id, int attempt, int from_step,
                                                        int limit) override;
  absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots(int64_t run_id) override;
  absl::StatusOr<std::vector<RunMetricAtStep>> MetricsAtStep(int64_t sweep_id, int step) override;
  absl::Status RequestPrune(int64_t run_id, int attempt) override;
  absl::StatusOr<std::optional<Lease>> ClaimNextRun(const std::string& agent, int64_t now_ms,
                                                    int64_t lease_expires_ms) override;
  absl::Status CheckAttemptOwner(int64_t run_id, int attempt, const std::string& agent) override;
  absl::Status RenewLease(int64_t run_id, int attempt, int64_t lease_expires_ms) override;
  absl::StatusOr<int> ExtendRunningLeases(int64_t lease_expires_ms) override;
  absl::Status ReleaseRun(int64_t run_id, int attempt, const std::string& reason, int64_t now_ms) override;
  absl::Status SetSweepPaused(int64_t sweep_id, bool paused) override;
  absl::StatusOr<int> CancelSweep(int64_t sweep_id, const std::string& reason, int64_t now_ms) override;
  absl::StatusOr<int> RequeueRuns(int64_t sweep_id, const std::vector<RunState>& states) override;
  absl::Status AppendMetrics(int64_t run_id, int attempt, const std::vector<MetricRow>& rows) override;
  absl::Status AddSnapshot(const SnapshotRecord& snapshot,
                           const std::function<absl::Status()>& before_commit = nullptr) override;
  absl::StatusOr<std::optional<SnapshotRecord>> FindSnapshot(int64_t run_id, int attempt, int step) override;
  absl::StatusOr<CompletedAttempt> CompleteAttempt(int64_t run_id, int attempt, const AttemptOutcome& outcome,
                                                   int64_t now_ms) override;
  absl::Status FinishRun(int64_t run_id, int attempt, RunState state, const std::string& error,
                         int64_t now_ms, const std::string& log_tail = "") override;
  absl::Status RetryElsewhere(int64_t run_id, int attempt, const std::string& error, const std::string& log_tail,
                              int64_t now_ms) override;
  absl::StatusOr<std::vector<std::string>> AgentsAvoidedBy(int64_t run_id) override;
  absl::StatusOr<std::vector<RunRecord>> ExpireLeases(int64_t now_ms) override;
  absl::Status UpsertAgent(const AgentRecord& agent, int64_t live_since_ms) override;
  absl::Status RecordAgentActivity(const std::string& name, int64_t now_ms, const AgentActivity& activity) override;
  absl::StatusOr<AgentRecord> RecordAgentOutcome(const std::string& name, bool failed, const std::string& error,
                                                 int quarantine_after) override;
  absl::StatusOr<bool> ReleaseAgent(const std::string& name) override;
  absl::StatusOr<AgentRecord> GetAgent(const std::string& name) override;
  absl::StatusOr<std::vector<AgentRecord>> ListAgents() override;
  absl::StatusOr<int64_t> CreateCredential(const CredentialRecord& credential) override;
  absl::StatusOr<CredentialRecord> GetCredential(int64_t id) override;
  absl::StatusOr<std::vector<CredentialRecord>> ListCredentials() override;
  absl::StatusOr<CredentialRecord> RevokeCredential(const std::string& id_or_name, int64_t now_ms) override;
  absl::Status NoteCredentialUse(int64_t id, int64_t now_ms) override;
  absl::StatusOr<bool> HasCredentials() override;

 private:
  SqliteStore(sqlite::Database db, std::string path, bool read_only)
      : db_(std::move(db)), path_(std::move(path)), read_only_(read_only) {}

  // A write transaction, or FailedPrecondition on a read-only store.
  absl::StatusOr<sqlite::Transaction> BeginWrite(std::string_view purpose) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<SweepRecord> ReadSweep(int64_t sweep_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<RunRecord> ReadRun(int64_t run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<AgentRecord> ReadAgent(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::optional<SnapshotRecord>> ReadSnapshot(int64_t run_id, int attempt, int step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The run's current attempt ends as `state`, the run with it (FinishRun and
  // CompleteAttempt, inside their transaction).
  absl::Status EndRun(const RunRecord& run, RunState state, const std::string& error, const std::string& log_tail,
                      int diverged_step, int64_t now_ms, const std::string& purpose) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a run its agent ended to the agent's counters (RecordAgentOutcome).
  absl::StatusOr<AgentRecord> CountOutcome(const std::string& name, bool failed, const std::string& error,
                                           int quarantine_after, const std::string& purpose)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ReleaseRun (`ended` CANCELLED) and RetryElsewhere (FAILED; the agent is
  // avoided from then on): ends the run's RUNNING attempt as `ended` and
  // queues the run again, in one transaction; a repeated call is a no-op.
  absl::Status RequeueAttempt(int64_t run_id, int attempt, RunState ended, const std::string& error,
                              const std::string& log_tail, int64_t now_ms, const std::string& purpose)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when (run_id, attempt) is the run's current attempt and it is
  // RUNNING; else FailedPrecondition saying what the run is now.
  absl::Status CheckHeld(int64_t run_id, int attempt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when attempt `attempt` of the run was leased to `agent`; else
  // PermissionDenied (CheckAttemptOwner, and inside CompleteAttempt).
  absl::Status CheckOwner(int64_t run_id, int attempt, const std::string& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite::Database db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
  const bool read_only_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_STORE_SQLITE_STORE_H_
