#ifndef STYLESWEEP_COORDINATOR_STORE_STORE_H_
#define STYLESWEEP_COORDINATOR_STORE_STORE_H_

// The coordinator's durable state: sweeps, runs, attempts, agents, per-step
// losses and snapshots. Domain types only; no gRPC, no SQL in this header.
//
// Every mutating call is one transaction: it either lands whole or not at all.
// Calls on a run's attempt check that the attempt is still the run's current
// one and RUNNING, so a late report from an agent whose lease was taken away
// never overwrites the new attempt (FailedPrecondition). Metric and snapshot
// writes are idempotent: repeating one (a retried RPC) changes nothing.
// Unknown sweep or run ids are NotFound, for reads too. Leases and agents'
// last-seen times only ever move forward, so a late retried heartbeat is
// harmless.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/evaluation.h"
#include "common/run_state.h"

namespace stylesweep {

struct NewSweep {
  std::string name;
  std::string method = "grid";
  std::string source;      // where the YAML came from, as the user named it
  std::string yaml;        // the submitted text, verbatim
  std::string spec_json;   // the validated spec
  int max_attempts = 3;
  int64_t created_ms = 0;
  std::string content_hash;  // SweepContentHash of the YAML and its images
  uint64_t search_seed = 0;  // random/bayes: the generator's seed (< 2^63)
  int draws = 0;             // points already drawn (the runs created with the sweep)
  int run_cap = 0;           // most runs the sweep may have; 0: the runs given
  int max_concurrent = 0;    // most RUNNING runs at once; 0: no limit
};

struct NewRun {
  int index = 0;            // position in the expansion, 0-based
  std::string params_json;  // RunParams::ToJson().dump()
  std::string params_hash;  // RunParams::Hash()
  std::string point_json;   // bayes: the search-space point (JSON array); else empty
};

struct SweepRecord {
  int64_t id = 0;
  std::string name;
  std::string method;
  std::string source;
  std::string yaml;
  std::string spec_json;
  int max_attempts = 3;
  int64_t created_ms = 0;
  std::string content_hash;
  uint64_t search_seed = 0;
  int draws = 0;
  int run_cap = 0;
  int max_concurrent = 0;
  bool paused = false;  // queued runs wait until resumed
};

struct RunRecord {
  int64_t id = 0;
  int64_t sweep_id = 0;
  int index = 0;
  std::string params_json;
  std::string params_hash;
  RunState state = RunState::kQueued;
  int attempt = 0;             // current (latest) attempt number; 0: never leased
  std::string agent;           // holder of the current attempt
  int64_t created_ms = 0;
  int64_t started_ms = 0;      // current attempt's start; 0 if none
  int64_t finished_ms = 0;     // 0 while not terminal
  int64_t lease_expires_ms = 0;
  std::string error;
  // Losses of the latest step reported by the current attempt (-1 step: none).
  int last_step = -1;
  double content_loss = 0, style_loss = 0, tv_loss = 0, total_loss = 0;
  std::string final_snapshot;  // path relative to the artifacts directory
  std::string point_json;      // see NewRun
  std::string log_tail;        // FAILED: the last lines of the agent's log
  bool prune_requested = false;  // early termination asked the current attempt to stop
  // FAILED because a loss became NaN or infinite at this step (the run's own
  // fault: it is the worst of its sweep); -1: it did not diverge.
  int diverged_step = -1;
  bool diverged() const { return diverged_step >= 0; }
  // The current attempt's latest evaluation (common/evaluation.h) and the
  // step it was measured at; -1: none yet (or an agent that does not
  // evaluate).
  int eval_step = -1;
  Evaluation eval;
  bool has_eval() const { return eval_step >= 0; }
};


struct AttemptRecord {
  int64_t run_id = 0;
  int attempt = 0;
  std::string agent;
  RunState state = RunState::kRunning;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  std::string error;
  std::string log_tail;
};

struct MetricRow {
  int step = 0;
  double content = 0, style = 0, tv = 0, total = 0;
  double step_seconds = 0;
  // Set at the steps the agent evaluated (rungs, snapshots, the last step).
  std::optional<Evaluation> eval;
};

// One run's losses at one step, as early termination compares them.
struct RunMetricAtStep {
  int64_t run_id = 0;
  MetricRow row;
  // The run diverged before reaching the step: it has no row there and
  // counts as worse than any run that has.
  bool diverged = false;
};

struct SnapshotRecord {
  int64_t run_id = 0;
  int attempt = 0;
  int step = 0;
  std::string path;  // relative to the artifacts directory
  bool final = false;
  std::string sha256;  // hex digest of the PNG's bytes; empty for records older than the digest
};

struct AgentRecord {
  std::string name;  // unique
  std::string host;
  std::string device;       // cpu, cuda:0
  std::string device_name;  // e.g. "NVIDIA H200", or the CPU's model
  int64_t memory_bytes = 0;
  int slots = 1;
  std::string description;
  int64_t registered_ms = 0;
  int64_t last_seen_ms = 0;
  // Its latest report (see AgentActivity).
  int64_t run_id = 0;  // 0: idle
  int attempt = 0;
  int step = 0;
  int steps = 0;
  double steps_per_second = 0;
  bool draining = false;
  // How the runs it ended went.
  int consecutive_failures = 0;  // FAILED in a row (out-of-memory ones excepted)
  int failures = 0;
  int runs_finished = 0;
  std::string quarantine_reason;  // non-empty: quarantined
  // The credential that registered it (see CredentialKey in
  // coordinator/auth/credentials.h); '' without credentials.
  std::string credential;
};

// A scoped credential (`stylesweep tokens`). Only a salted hash of its
// secret is stored.
struct CredentialRecord {
  int64_t id = 0;
  std::string name;  // unique, never reused
  std::string role;  // "agent", "user" or "reader"
  std::string agent_names;  // role agent: comma-separated names or PREFIX*
  std::string salt;         // hex
  std::string secret_hash;  // hex SHA-256 of salt and secret
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0: in force
  int64_t last_used_ms = 0;
};

// What an agent is doing, as users see it. Lost: silent for longer than a
// lease (it crashed, lost its network, or stopped).
enum class AgentState { kIdle, kBusy, kDraining, kLost, kQuarantined };
std::string_view AgentStateName(AgentState state);
AgentState StateOf(const AgentRecord& agent, int64_t now_ms, int64_t lost_after_ms);

// An agent's report of what it is doing (a heartbeat, or a lease request
// while idle).
struct AgentActivity {
  int64_t run_id = 0;  // 0: idle
  int attempt = 0;
  int step = 0;
  int steps = 0;
  double steps_per_second = 0;
  bool draining = false;
};

// How many runs one sweep has in one state.
struct RunCount {
  int64_t sweep_id = 0;
  std::string sweep_name;
  RunState state = RunState::kQueued;
  int64_t runs = 0;
};

struct Lease {
  RunRecord run;  // as it is after the claim (RUNNING, attempt incremented)
  int attempt = 0;
};

// How an agent says its attempt ended (Store::CompleteAttempt).
struct AttemptOutcome {
  std::string agent;  // the caller: it must hold (run, attempt)
  RunState state = RunState::kSucceeded;  // SUCCEEDED, FAILED, CANCELLED or PRUNED
  std::string error;
  std::string log_tail;  // FAILED: the agent's last log lines
  // FAILED because a loss was not finite at this step; -1: not diverged.
  int diverged_step = -1;
  // SUCCEEDED needs the current attempt's losses at this step (the run's
  // planned steps).
  int last_step = 0;
  // Whether the outcome says something about the agent's health, so that
  // its counters change (not for cancellations, running out of device
  // memory, or divergence, which is the run's fault).
  bool counts_for_agent = true;
  int quarantine_after = 0;  // see RecordAgentOutcome
};

struct CompletedAttempt {
  bool applied = false;  // false: a repeat of a call already applied (nothing changed)
  AgentRecord agent;     // the holder, after its counters changed
};

// A page of a sweep's runs in expansion order (Store::ListRunsPage).
struct RunPageRequest {
  int after_index = -1;  // runs with a greater index
  int limit = 1000;
  std::vector<RunState> states;  // empty: every state
};

// What a sweep's runs add up to, from one aggregate query.
struct SweepTotals {
  int64_t sweep_id = 0;
  std::map<RunState, int64_t> runs_by_state;
  int64_t steps_run = 0;    // steps the runs' current attempts ran
  int64_t steps_saved = 0;  // planned steps PRUNED runs did not run
};

// What DeleteSweep removed from the database.
struct DeletedSweep {
  SweepRecord sweep;  // as it was (without yaml and spec_json)
  int runs = 0;
  int64_t metric_rows = 0;
  std::vector<std::string> snapshot_paths;  // relative to the artifacts directory
  std::vector<std::string> unshared_blobs;  // image blob ids no other sweep names
};

class Store {
 public:
  virtual ~Store() = default;

  // Stores a sweep and all its runs (QUEUED) in one transaction; returns the
  // sweep's id. Nothing is stored on failure.
  virtual absl::StatusOr<int64_t> CreateSweep(const NewSweep& sweep, const std::vector<NewRun>& runs) = 0;

  // Adds run number `sweep.draws` (a proposed point) to a sweep whose
  // run_cap allows one more, and counts the draw, in one transaction.
  // `expected_draws` is the draw count the proposal was made from: when
  // another proposal landed first (or the cap is reached) nothing is stored
  // and the result is Aborted (resp. FailedPrecondition), so each draw
  // becomes exactly one run. Returns the new run's id.
  virtual absl::StatusOr<int64_t> AddRun(int64_t sweep_id, int expected_draws, const NewRun& run,
                                         int64_t now_ms) = 0;

  // The most recent sweep with this content hash, or nullopt.
  virtual absl::StatusOr<std::optional<SweepRecord>> FindSweepByContentHash(const std::string& content_hash) = 0;

  virtual absl::StatusOr<SweepRecord> GetSweep(int64_t sweep_id) = 0;
  // By decimal id, or else by name (the most recent sweep of that name).
  // NotFound names what was looked for.
  virtual absl::StatusOr<SweepRecord> FindSweep(const std::string& id_or_name) = 0;
  // Every sweep by id. Without `with_text` the records leave out yaml and
  // spec_json (listings stay small however large the sweeps are).
  virtual absl::StatusOr<std::vector<SweepRecord>> ListSweeps(bool with_text = true) = 0;
  // At most `limit` of them with an id above `after_id`.
  virtual absl::StatusOr<std::vector<SweepRecord>> ListSweepsPage(int64_t after_id, int limit, bool with_text) = 0;
  // Bayes sweeps that may still propose runs (not paused, draws below
  // run_cap), without their text: their number, not history's, is the cost.
  virtual absl::StatusOr<std::vector<SweepRecord>> ListOpenSearchSweeps() = 0;
  // The totals of one sweep (`sweep_id` > 0) or of every sweep (0), by id;
  // a sweep without runs is left out of the latter.
  virtual absl::StatusOr<std::vector<SweepTotals>> TotalSweeps(int64_t sweep_id) = 0;
  // The same for the sweeps with ids from `first_id` to `last_id`.
  virtual absl::StatusOr<std::vector<SweepTotals>> TotalSweepsBetween(int64_t first_id, int64_t last_id) = 0;
  // Removes a sweep with its runs, attempts, losses and snapshot records in
  // one transaction. FailedPrecondition while any run is QUEUED or RUNNING.
  // Files are the caller's to remove (see DeletedSweep).
  virtual absl::StatusOr<DeletedSweep> DeleteSweep(int64_t sweep_id) = 0;

  virtual absl::StatusOr<RunRecord> GetRun(int64_t run_id) = 0;
  // Runs of a sweep in expansion order.
  virtual absl::StatusOr<std::vector<RunRecord>> ListRuns(int64_t sweep_id) = 0;
  // One page of them (see RunPageRequest); cost bounded by the page.
  virtual absl::StatusOr<std::vector<RunRecord>> ListRunsPage(int64_t sweep_id, const RunPageRequest& page) = 0;
  // The runs of every sweep counted by state, by sweep id then state; a
  // state without runs is left out. For dashboards and metrics: one
  // aggregate query, cheap however many runs there are.
  virtual absl::StatusOr<std::vector<RunCount>> CountRuns() = 0;
  virtual absl::StatusOr<std::vector<AttemptRecord>> ListAttempts(int64_t run_id) = 0;
  // Per-step rows of one attempt (0: the run's current attempt), by step.
  virtual absl::StatusOr<std::vector<MetricRow>> GetMetrics(int64_t run_id, int attempt) = 0;
  // At most `limit` of them, from step `from_step` on.
  virtual absl::StatusOr<std::vector<MetricRow>> GetMetricsPage(int64_t run_id, int attempt, int from_step,
                                                                int limit) = 0;
  virtual absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots(int64_t run_id) = 0;

  // The losses at `step` of every run of the sweep whose current attempt
  // reported that step, and the runs that diverged at or before it
  // (`diverged`, no losses), by run id.
  virtual absl::StatusOr<std::vector<RunMetricAtStep>> MetricsAtStep(int64_t sweep_id, int step) = 0;

  // Atomically moves the oldest QUEUED run (lowest sweep id, then index) to
  // RUNNING under a new attempt held by `agent` until `lease_expires_ms`,
  // clearing what belonged to the previous attempt (error, latest losses,
  // final snapshot, prune request). Runs of a sweep that already has
  // max_concurrent RUNNING runs are skipped. nullopt when nothing is queued.
  virtual absl::StatusOr<std::optional<Lease>> ClaimNextRun(const std::string& agent, int64_t now_ms,
                                                            int64_t lease_expires_ms) = 0;

  // OK when attempt `attempt` of the run was leased to `agent`, whatever it
  // is now; PermissionDenied when it was another agent's or never existed.
  // Who holds an attempt never changes, so the answer holds after the call.
  virtual absl::Status CheckAttemptOwner(int64_t run_id, int attempt, const std::string& agent) = 0;

  // Extends the lease. FailedPrecondition if (run, attempt) is no longer the
  // run's current RUNNING attempt: the caller must stop that run.
  virtual absl::Status RenewLease(int64_t run_id, int attempt, int64_t lease_expires_ms) = 0;

  // Extends every RUNNING run's lease to at least `lease_expires_ms`: a
  // coordinator that starts again on a database gives the agents still
  // running its runs the time to reconnect before calling them lost.
  // Returns how many leases it extended.
  virtual absl::StatusOr<int> ExtendRunningLeases(int64_t lease_expires_ms) = 0;

  // Marks the current attempt to be stopped early (idempotent).
  // FailedPrecondition as above.
  virtual absl::Status RequestPrune(int64_t run_id, int attempt) = 0;

  // Appends per-step losses; rows already stored for that step are left as
  // they are. Updates the run's latest losses. FailedPrecondition as above.
  virtual absl::Status AppendMetrics(int64_t run_id, int attempt, const std::vector<MetricRow>& rows) = 0;

  // Records a snapshot file (idempotent on run, attempt, step). A final one
  // becomes the run's final_snapshot. FailedPrecondition as above.
  //
  // When a record for that step exists: with the same sha256 the call is a
  // no-op, except that final marks that record final; with another sha256 it
  // is AlreadyExists. A final at a new step while the attempt already has a
  // final snapshot at another step is AlreadyExists too. Otherwise the new
  // record is inserted and `before_commit` (when given) runs inside the
  // transaction: the caller puts the file in place there, and a failure
  // rolls the record back, so records and files agree.
  virtual absl::Status AddSnapshot(const SnapshotRecord& snapshot,
                                   const std::function<absl::Status()>& before_commit = nullptr) = 0;
  // The record of one step's snapshot, or nullopt.
  virtual absl::StatusOr<std::optional<SnapshotRecord>> FindSnapshot(int64_t run_id, int attempt, int step) = 0;

  // Ends the attempt and the run with `state` (SUCCEEDED, FAILED, CANCELLED or
  // PRUNED), keeping `log_tail` (the agent's last log lines, for a failure)
  // with both. It trusts its caller (the coordinator itself, tools that build
  // databases); what agents report goes through CompleteAttempt. Repeating the same call is OK; FailedPrecondition if the
  // attempt is stale or the run already ended differently.
  virtual absl::Status FinishRun(int64_t run_id, int attempt, RunState state, const std::string& error,
                                 int64_t now_ms, const std::string& log_tail = "") = 0;

  // An agent's report that its attempt ended, checked and applied in one
  // transaction: PermissionDenied unless outcome.agent holds the attempt;
  // FailedPrecondition when it is no longer current, when SUCCEEDED comes
  // without the losses of outcome.last_step, or PRUNED without a prune
  // request. A PRUNED or diverged attempt without a final snapshot gets its
  // latest one as final. The attempt's end, the run's and (when
  // counts_for_agent) the agent's counters change together; a repeat of the
  // same outcome is OK and changes nothing (applied false).
  virtual absl::StatusOr<CompletedAttempt> CompleteAttempt(int64_t run_id, int attempt,
                                                           const AttemptOutcome& outcome, int64_t now_ms) = 0;

  // The attempt failed on its agent's device memory: it ends FAILED (with
  // `error` and `log_tail`), the run is QUEUED again at once without counting
  // against max_attempts, and ClaimNextRun never gives it to that agent
  // again. Repeating the call is OK; FailedPrecondition as above.
  virtual absl::Status RetryElsewhere(int64_t run_id, int attempt, const std::string& error,
                                      const std::string& log_tail, int64_t now_ms) = 0;
  // Agents a run is no longer given to (see RetryElsewhere), by name.
  virtual absl::StatusOr<std::vector<std::string>> AgentsAvoidedBy(int64_t run_id) = 0;

  // Hands a RUNNING run back: its agent is stopping (drained or interrupted)
  // before the run ended. The attempt ends CANCELLED with `reason`, keeping
  // its losses; the run is QUEUED again at once, and the attempt does not
  // count against max_attempts. Repeating the call is OK; FailedPrecondition
  // if the attempt is no longer held.
  virtual absl::Status ReleaseRun(int64_t run_id, int attempt, const std::string& reason, int64_t now_ms) = 0;

  // Sweep control, each idempotent; NotFound for an unknown sweep.
  // Pause keeps queued runs from being claimed (runs in progress go on).
  virtual absl::Status SetSweepPaused(int64_t sweep_id, bool paused) = 0;
  // Ends every QUEUED or RUNNING run of the sweep as CANCELLED (a RUNNING
  // attempt too, keeping its losses; its agent is told to stop at its next
  // report), and stops a bayes sweep from proposing more. Returns how many
  // runs it ended.
  virtual absl::StatusOr<int> CancelSweep(int64_t sweep_id, const std::string& reason, int64_t now_ms) = 0;
  // Queues the sweep's runs in `states` (FAILED, LOST, CANCELLED) again, each
  // with one more attempt. Returns how many.
  virtual absl::StatusOr<int> RequeueRuns(int64_t sweep_id, const std::vector<RunState>& states) = 0;

  // Marks every RUNNING run whose lease expired before `now_ms` as a LOST
  // attempt and re-queues it, or leaves it LOST when it has lost the sweep's
  // max_attempts attempts (attempts handed back by their agent do not count). The expiry is written to the run's error either way (a new
  // claim clears it). Returns the affected runs in claim order.
  virtual absl::StatusOr<std::vector<RunRecord>> ExpireLeases(int64_t now_ms) = 0;

  // Registers an agent, or registers it again after a restart: its device
  // details, credential and last-seen time are replaced and its activity
  // reset, while its run history and quarantine are kept. AlreadyExists,
  // changing nothing, when an agent of that name registered with another
  // credential was seen at or after `live_since_ms` (it is still alive: a
  // name is taken over only once its holder is lost, or by the same
  // credential).
  virtual absl::Status UpsertAgent(const AgentRecord& agent, int64_t live_since_ms) = 0;
  // Records what the agent is doing and that it was seen at `now_ms`. A
  // report older than the latest one changes nothing (retries arrive out of
  // order). NotFound for an agent that never registered.
  virtual absl::Status RecordAgentActivity(const std::string& name, int64_t now_ms,
                                           const AgentActivity& activity) = 0;
  // Counts a run the agent ended: `failed` adds to its consecutive failures,
  // anything else resets them. When they reach `quarantine_after` (> 0) the
  // agent is quarantined with a reason naming `error`. Returns the agent
  // after the change.
  virtual absl::StatusOr<AgentRecord> RecordAgentOutcome(const std::string& name, bool failed,
                                                         const std::string& error, int quarantine_after) = 0;
  // Lifts a quarantine and resets the consecutive failures. Idempotent;
  // returns whether the agent was quarantined. NotFound for an unknown agent.
  virtual absl::StatusOr<bool> ReleaseAgent(const std::string& name) = 0;
  virtual absl::StatusOr<AgentRecord> GetAgent(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<AgentRecord>> ListAgents() = 0;

  // Scoped credentials. CreateCredential returns the new id; AlreadyExists
  // for a name taken (revoked ones included).
  virtual absl::StatusOr<int64_t> CreateCredential(const CredentialRecord& credential) = 0;
  // NotFound for an unknown id.
  virtual absl::StatusOr<CredentialRecord> GetCredential(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<CredentialRecord>> ListCredentials() = 0;
  // Revokes by name or id; revoking a revoked credential changes nothing.
  // Returns the credential after the change; NotFound for an unknown one.
  virtual absl::StatusOr<CredentialRecord> RevokeCredential(const std::string& id_or_name, int64_t now_ms) = 0;
  // Records that the credential was used at `now_ms` (never moves back).
  virtual absl::Status NoteCredentialUse(int64_t id, int64_t now_ms) = 0;
  // Whether any credential was ever created (revoked ones count: once a
  // coordinator has had credentials it never goes back to needing none).
  virtual absl::StatusOr<bool> HasCredentials() = 0;
};

struct SqliteStoreOptions {
  bool read_only = false;  // for reports: never writes, safe beside a running coordinator
};

// Opens (creating if needed, unless read-only) the SQLite database at `path`
// (":memory:" for tests) and applies pending migrations from schemas/. WAL
// mode, busy timeout. Thread-safe: calls are serialised internally.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       const SqliteStoreOptions& options = {});

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_STORE_STORE_H_
