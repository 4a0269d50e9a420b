#include "coordinator/store/sqlite_store.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/store/migrations.h"

namespace stylesweep {
namespace {

using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;

constexpr char kInMemory[] = ":memory:";
constexpr int kBusyTimeoutMs = 5000;

std::string StateName(RunState state) { return std::string(RunStateName(state)); }

absl::StatusOr<RunState> StateColumn(const Statement& row, int column, const std::string& what) {
  std::string text = row.ColumnText(column);
  std::optional<RunState> state = ParseRunState(text);
  if (!state.has_value()) return absl::DataLossError(absl::StrCat(what, " has an unknown state '", text, "'"));
  return *state;
}

constexpr char kSweepColumns[] =
    "id, name, method, source, yaml, spec_json, max_attempts, created_ms, content_hash, search_seed, draws, "
    "run_cap, max_concurrent, paused";
// The same columns with the sweep's text (yaml, spec_json) left empty.
constexpr char kSweepColumnsWithoutText[] =
    "id, name, method, source, '', '', max_attempts, created_ms, content_hash, search_seed, draws, "
    "run_cap, max_concurrent, paused";

SweepRecord SweepFromRow(const Statement& row) {
  SweepRecord sweep;
  sweep.id = row.ColumnInt64(0);
  sweep.name = row.ColumnText(1);
  sweep.method = row.ColumnText(2);
  sweep.source = row.ColumnText(3);
  sweep.yaml = row.ColumnText(4);
  sweep.spec_json = row.ColumnText(5);
  sweep.max_attempts = row.ColumnInt(6);
  sweep.created_ms = row.ColumnInt64(7);
  sweep.content_hash = row.ColumnText(8);
  sweep.search_seed = static_cast<uint64_t>(row.ColumnInt64(9));
  sweep.draws = row.ColumnInt(10);
  sweep.run_cap = row.ColumnInt(11);
  sweep.max_concurrent = row.ColumnInt(12);
  sweep.paused = row.ColumnInt(13) != 0;
  return sweep;
}

constexpr char kRunColumns[] =
    "id, sweep_id, idx, params_json, params_hash, state, attempt, agent, created_ms, started_ms, finished_ms, "
    "lease_expires_ms, error, last_step, content_loss, style_loss, tv_loss, total_loss, final_snapshot, point_json, "
    "prune_requested, log_tail, diverged_step, eval_step, eval_style, eval_content, eval_tv, eval_style_norm, "
    "eval_content_norm, eval_tv_norm, eval_ssim, eval_color";

// The eight values of an Evaluation from `first` on, in struct order.
Evaluation ReadEvaluation(const Statement& row, int first) {
  Evaluation e;
  e.style = row.ColumnDouble(first);
  e.content = row.ColumnDouble(first + 1);
  e.tv = row.ColumnDouble(first + 2);
  e.style_norm = row.ColumnDouble(first + 3);
  e.content_norm = row.ColumnDouble(first + 4);
  e.tv_norm = row.ColumnDouble(first + 5);
  e.ssim = row.ColumnDouble(first + 6);
  e.color = row.ColumnDouble(first + 7);
  return e;
}

void BindEvaluation(Statement& stmt, int first, const Evaluation& e) {
  stmt.Bind(first, e.style);
  stmt.Bind(first + 1, e.content);
  stmt.Bind(first + 2, e.tv);
  stmt.Bind(first + 3, e.style_norm);
  stmt.Bind(first + 4, e.content_norm);
  stmt.Bind(first + 5, e.tv_norm);
  stmt.Bind(first + 6, e.ssim);
  stmt.Bind(first + 7, e.color);
}

absl::StatusOr<RunRecord> RunFromRow(const Statement& row) {
  RunRecord run;
  run.id = row.ColumnInt64(0);
  run.sweep_id = row.ColumnInt64(1);
  run.index = row.ColumnInt(2);
  run.params_json = row.ColumnText(3);
  run.params_hash = row.ColumnText(4);
  absl::StatusOr<RunState> state = StateColumn(row, 5, absl::StrCat("run ", run.id));
  if (!state.ok()) return state.status();
  run.state = *state;
  run.attempt = row.ColumnInt(6);
  run.agent = row.ColumnText(7);
  run.created_ms = row.ColumnInt64(8);
  run.started_ms = row.ColumnInt64(9);
  run.finished_ms = row.ColumnInt64(10);
  run.lease_expires_ms = row.ColumnInt64(11);
  run.error = row.ColumnText(12);
  run.last_step = row.ColumnInt(13);
  run.content_loss = row.ColumnDouble(14);
  run.style_loss = row.ColumnDouble(15);
  run.tv_loss = row.ColumnDouble(16);
  run.total_loss = row.ColumnDouble(17);
  run.final_snapshot = row.ColumnText(18);
  run.point_json = row.ColumnText(19);
  run.prune_requested = row.ColumnInt(20) != 0;
  run.log_tail = row.ColumnText(21);
  run.diverged_step = row.ColumnInt(22);
  run.eval_step = row.ColumnInt(23);
  if (run.eval_step >= 0) run.eval = ReadEvaluation(row, 24);
  return run;
}

absl::StatusOr<AttemptRecord> AttemptFromRow(const Statement& row) {
  AttemptRecord attempt;
  attempt.run_id = row.ColumnInt64(0);
  attempt.attempt = row.ColumnInt(1);
  attempt.agent = row.ColumnText(2);
  absl::StatusOr<RunState> state =
      StateColumn(row, 3, absl::StrCat("run ", attempt.run_id, " attempt ", attempt.attempt));
  if (!state.ok()) return state.status();
  attempt.state = *state;
  attempt.started_ms = row.ColumnInt64(4);
  attempt.finished_ms = row.ColumnInt64(5);
  attempt.error = row.ColumnText(6);
  attempt.log_tail = row.ColumnText(7);
  return attempt;
}

constexpr char kAgentColumns[] =
    "name, host, device, description, registered_ms, last_seen_ms, device_name, memory_bytes, slots, run_id, "
    "attempt, step, steps, steps_per_second, draining, consecutive_failures, failures, runs_finished, "
    "quarantine_reason, credential";

AgentRecord AgentFromRow(const Statement& row) {
  AgentRecord agent;
  agent.name = row.ColumnText(0);
  agent.host = row.ColumnText(1);
  agent.device = row.ColumnText(2);
  agent.description = row.ColumnText(3);
  agent.registered_ms = row.ColumnInt64(4);
  agent.last_seen_ms = row.ColumnInt64(5);
  agent.device_name = row.ColumnText(6);
  agent.memory_bytes = row.ColumnInt64(7);
  agent.slots = row.ColumnInt(8);
  agent.run_id = row.ColumnInt64(9);
  agent.attempt = row.ColumnInt(10);
  agent.step = row.ColumnInt(11);
  agent.steps = row.ColumnInt(12);
  agent.steps_per_second = row.ColumnDouble(13);
  agent.draining = row.ColumnInt(14) != 0;
  agent.consecutive_failures = row.ColumnInt(15);
  agent.failures = row.ColumnInt(16);
  agent.runs_finished = row.ColumnInt(17);
  agent.quarantine_reason = row.ColumnText(18);
  agent.credential = row.ColumnText(19);
  return agent;
}

constexpr char kCredentialColumns[] =
    "id, name, role, agent_names, salt, secret_hash, created_ms, revoked_ms, last_used_ms";

CredentialRecord CredentialFromRow(const Statement& row) {
  CredentialRecord credential;
  credential.id = row.ColumnInt64(0);
  credential.name = row.ColumnText(1);
  credential.role = row.ColumnText(2);
  credential.agent_names = row.ColumnText(3);
  credential.salt = row.ColumnText(4);
  credential.secret_hash = row.ColumnText(5);
  credential.created_ms = row.ColumnInt64(6);
  credential.revoked_ms = row.ColumnInt64(7);
  credential.last_used_ms = row.ColumnInt64(8);
  return credential;
}

// A snapshot row selected as run_id, attempt, step, path, is_final, sha256.
SnapshotRecord SnapshotFromRow(const Statement& row) {
  SnapshotRecord snapshot;
  snapshot.run_id = row.ColumnInt64(0);
  snapshot.attempt = row.ColumnInt(1);
  snapshot.step = row.ColumnInt(2);
  snapshot.path = row.ColumnText(3);
  snapshot.final = row.ColumnInt(4) != 0;
  snapshot.sha256 = row.ColumnText(5);
  return snapshot;
}

// Steps `stmt` to the end, turning each row into a T with `from_row` (which
// returns a T or a StatusOr<T>).
template <typename T, typename FromRow>
absl::StatusOr<std::vector<T>> CollectRows(Statement& stmt, FromRow from_row) {
  std::vector<T> items;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) return items;
    absl::StatusOr<T> item = from_row(stmt);
    if (!item.ok()) return item.status();
    items.push_back(*std::move(item));
  }
}

absl::StatusOr<int64_t> QueryInt(Database& db, std::string_view sql, const std::string& purpose) {
  absl::StatusOr<Statement> stmt = db.Prepare(sql, purpose);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<int64_t>> values =
      CollectRows<int64_t>(*stmt, [](const Statement& row) { return row.ColumnInt64(0); });
  if (!values.ok()) return values.status();
  if (values->size() != 1) return absl::InternalError(absl::StrCat(purpose, ": expected one row"));
  return values->front();
}

absl::Status NotHeldError(int64_t run_id, int attempt, const RunRecord& run) {
  return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " attempt ", attempt,
                                                    " is no longer held: now attempt ", run.attempt, ", ",
                                                    StateName(run.state)));
}

// Sets the connection up for the coordinator's access pattern: one writer
// (this process) and any number of read-only readers (reports) beside it.
absl::Status Configure(Database& db, const std::string& path, bool read_only) {
  // foreign_keys is off by default in SQLite and per connection.
  std::string pragmas = absl::StrCat("PRAGMA busy_timeout = ", kBusyTimeoutMs, "; PRAGMA foreign_keys = ON;");
  if (!read_only) {
    // In WAL mode NORMAL survives a crash of the process intact and may lose
    // only the last commits on power loss, without an fsync per commit.
    pragmas += " PRAGMA synchronous = NORMAL;";
  }
  if (absl::Status s = db.Exec(pragmas, absl::StrCat("configure ", path)); !s.ok()) return s;
  if (read_only || path == kInMemory) return absl::OkStatus();

  // WAL lets readers read while the coordinator writes. It is a property of
  // the file, so the writer sets it once for everyone; SQLite answers with
  // the mode it actually chose.
  absl::StatusOr<Statement> wal = db.Prepare("PRAGMA journal_mode = WAL", absl::StrCat("set WAL mode on ", path));
  if (!wal.ok()) return wal.status();
  absl::StatusOr<bool> row = wal->Step();
  if (!row.ok()) return row.status();
  std::string mode = *row ? wal->ColumnText(0) : "";
  if (mode != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": SQLite could not switch it to WAL mode (it stays in '", mode,
                     "' mode), which reports beside a running coordinator need; is it on a network filesystem?"));
  }
  return absl::OkStatus();
}

// The highest migration recorded in the file; 0 for a new, empty database.
absl::StatusOr<int64_t> SchemaVersion(Database& db, const std::string& path) {
  const std::string purpose = absl::StrCat("read the schema version of ", path);
  absl::StatusOr<int64_t> has_table =
      QueryInt(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", purpose);
  if (!has_table.ok() || *has_table == 0) return has_table;
  return QueryInt(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", purpose);
}

absl::Status ApplyMigration(Database& db, const std::string& path, const Migration& migration) {
  const std::string purpose = absl::StrCat("apply migration ", migration.file_name, " to ", path);
  absl::StatusOr<Transaction> txn = Transaction::Begin(db, purpose);
  if (!txn.ok()) return txn.status();
  // Another coordinator opening the same file may have applied it while this
  // one waited for the write lock.
  absl::StatusOr<int64_t> version = SchemaVersion(db, path);
  if (!version.ok()) return version.status();
  if (*version >= migration.version) return absl::OkStatus();

  if (absl::Status s = db.Exec(migration.sql, purpose); !s.ok()) return s;
  absl::StatusOr<Statement> record =
      db.Prepare("INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)", purpose);
  if (!record.ok()) return record.status();
  record->Bind(1, migration.version);
  record->Bind(2, std::string_view(migration.file_name));
  record->Bind(3, SystemClock().NowMillis());
  if (absl::Status s = record->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::Status Migrate(Database& db, const std::string& path, bool read_only) {
  const std::vector<Migration>& migrations = EmbeddedMigrations();
  const int64_t latest = migrations.empty() ? 0 : migrations.back().version;
  absl::StatusOr<int64_t> current = SchemaVersion(db, path);
  if (!current.ok()) return current.status();
  if (*current > latest) {
    return absl::FailedPreconditionError(absl::StrCat(path, " has schema version ", *current,
                                                      ", newer than this stylesweep knows (", latest,
                                                      "): use the stylesweep that wrote it, or a newer one"));
  }
  if (*current == latest) return absl::OkStatus();
  if (read_only) {
    return absl::FailedPreconditionError(absl::StrCat(path, " has schema version ", *current,
                                                      " but this stylesweep needs ", latest,
                                                      ": start the coordinator on it once to bring it up to date"));
  }
  for (const Migration& migration : migrations) {
    if (migration.version <= *current) continue;
    if (absl::Status s = ApplyMigration(db, path, migration); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool IsDecimal(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

// A metrics row selected as step, content, style, tv, total, step_seconds
// starting at column `first`.
MetricRow ReadMetricRow(const Statement& row, int first) {
  MetricRow metric;
  metric.step = row.ColumnInt(first);
  metric.content = row.ColumnDouble(first + 1);
  metric.style = row.ColumnDouble(first + 2);
  metric.tv = row.ColumnDouble(first + 3);
  metric.total = row.ColumnDouble(first + 4);
  metric.step_seconds = row.ColumnDouble(first + 5);
  // Then the evaluation's columns, NULL from a LEFT JOIN when the step was
  // not evaluated.
  if (!row.ColumnIsNull(first + 6)) metric.eval = ReadEvaluation(row, first + 6);
  return metric;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                               const SqliteStoreOptions& options) {
  if (options.read_only) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      return absl::NotFoundError(absl::StrCat("no database at ", path, " (a read-only open never creates one)"));
    }
  }
  absl::StatusOr<Database> db = Database::Open(path, options.read_only);
  if (!db.ok()) return db.status();
  if (absl::Status s = Configure(*db, path, options.read_only); !s.ok()) return s;
  if (absl::Status s = Migrate(*db, path, options.read_only); !s.ok()) return s;
  return std::unique_ptr<SqliteStore>(new SqliteStore(*std::move(db), path, options.read_only));
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const SqliteStoreOptions& options) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(*std::move(store));
}

absl::StatusOr<Transaction> SqliteStore::BeginWrite(std::string_view purpose) {
  if (read_only_) {
    return absl::FailedPreconditionError(
        absl::StrCat(std::string(purpose), ": ", path_, " is open read-only; only the coordinator writes to it"));
  }
  return Transaction::Begin(db_, purpose);
}

absl::StatusOr<SweepRecord> SqliteStore::ReadSweep(int64_t sweep_id) {
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE id = ?1"),
                                               absl::StrCat("read sweep ", sweep_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sweep_id);
  absl::StatusOr<std::vector<SweepRecord>> sweeps = CollectRows<SweepRecord>(*stmt, SweepFromRow);
  if (!sweeps.ok()) return sweeps.status();
  if (sweeps->empty()) return absl::NotFoundError(absl::StrCat("no sweep with id ", sweep_id));
  return std::move(sweeps->front());
}

absl::StatusOr<RunRecord> SqliteStore::ReadRun(int64_t run_id) {
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE id = ?1"), absl::StrCat("read run ", run_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  absl::StatusOr<std::vector<RunRecord>> runs = CollectRows<RunRecord>(*stmt, RunFromRow);
  if (!runs.ok()) return runs.status();
  if (runs->empty()) return absl::NotFoundError(absl::StrCat("no run with id ", run_id));
  return std::move(runs->front());
}

absl::Status SqliteStore::CheckHeld(int64_t run_id, int attempt) {
  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt != attempt || run->state != RunState::kRunning) return NotHeldError(run_id, attempt, *run);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteStore::CreateSweep(const NewSweep& sweep, const std::vector<NewRun>& runs) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("create sweep '", sweep.name, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();

  absl::StatusOr<Statement> insert_sweep = db_.Prepare(
      "INSERT INTO sweeps (name, method, source, yaml, spec_json, max_attempts, created_ms, content_hash, "
      "search_seed, draws, run_cap, max_concurrent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
      absl::StrCat(purpose, ": insert sweep"));
  if (!insert_sweep.ok()) return insert_sweep.status();
  insert_sweep->Bind(1, sweep.name);
  insert_sweep->Bind(2, sweep.method);
  insert_sweep->Bind(3, sweep.source);
  insert_sweep->Bind(4, sweep.yaml);
  insert_sweep->Bind(5, sweep.spec_json);
  insert_sweep->Bind(6, sweep.max_attempts);
  insert_sweep->Bind(7, sweep.created_ms);
  insert_sweep->Bind(8, sweep.content_hash);
  insert_sweep->Bind(9, static_cast<int64_t>(sweep.search_seed));
  insert_sweep->Bind(10, std::max<int64_t>(sweep.draws, static_cast<int64_t>(runs.size())));
  insert_sweep->Bind(11, sweep.run_cap);
  insert_sweep->Bind(12, sweep.max_concurrent);
  if (absl::Status s = insert_sweep->Run(); !s.ok()) return s;
  const int64_t sweep_id = db_.LastInsertRowId();

  absl::StatusOr<Statement> insert_run =
      db_.Prepare("INSERT INTO runs (sweep_id, idx, params_json, params_hash, created_ms, point_json) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                  absl::StrCat(purpose, ": insert run"));
  if (!insert_run.ok()) return insert_run.status();
  insert_run->Bind(1, sweep_id);
  insert_run->Bind(5, sweep.created_ms);
  for (const NewRun& run : runs) {
    insert_run->Reset();
    insert_run->Bind(2, run.index);
    insert_run->Bind(3, run.params_json);
    insert_run->Bind(4, run.params_hash);
    insert_run->Bind(6, run.point_json);
    if (absl::Status s = insert_run->Run(); !s.ok()) return s;
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return sweep_id;
}

absl::StatusOr<int64_t> SqliteStore::AddRun(int64_t sweep_id, int expected_draws, const NewRun& run,
                                            int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("add run ", expected_draws, " to sweep ", sweep_id);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<SweepRecord> sweep = ReadSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  if (sweep->draws != expected_draws) {
    return absl::AbortedError(absl::StrCat(purpose, ": the sweep has ", sweep->draws,
                                           " draws already; propose again from them"));
  }
  if (sweep->run_cap > 0 && sweep->draws >= sweep->run_cap) {
    return absl::FailedPreconditionError(
        absl::StrCat(purpose, ": the sweep has reached its run_cap of ", sweep->run_cap));
  }
  absl::StatusOr<Statement> insert = db_.Prepare(
      "INSERT INTO runs (sweep_id, idx, params_json, params_hash, created_ms, point_json) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      purpose);
  if (!insert.ok()) return insert.status();
  insert->Bind(1, sweep_id);
  insert->Bind(2, sweep->draws);
  insert->Bind(3, run.params_json);
  insert->Bind(4, run.params_hash);
  insert->Bind(5, now_ms);
  insert->Bind(6, run.point_json);
  if (absl::Status s = insert->Run(); !s.ok()) return s;
  const int64_t run_id = db_.LastInsertRowId();
  absl::StatusOr<Statement> count =
      db_.Prepare("UPDATE sweeps SET draws = draws + 1 WHERE id = ?1", absl::StrCat(purpose, ": count the draw"));
  if (!count.ok()) return count.status();
  count->Bind(1, sweep_id);
  if (absl::Status s = count->Run(); !s.ok()) return s;
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return run_id;
}

absl::StatusOr<std::optional<SweepRecord>> SqliteStore::FindSweepByContentHash(const std::string& content_hash) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE content_hash = ?1 ORDER BY id DESC LIMIT 1"),
      "find a sweep by content");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, content_hash);
  absl::StatusOr<std::vector<SweepRecord>> sweeps = CollectRows<SweepRecord>(*stmt, SweepFromRow);
  if (!sweeps.ok()) return sweeps.status();
  if (sweeps->empty()) return std::optional<SweepRecord>();
  return std::optional<SweepRecord>(std::move(sweeps->front()));
}

absl::StatusOr<std::vector<RunMetricAtStep>> SqliteStore::MetricsAtStep(int64_t sweep_id, int step) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT r.id, m.step, m.content, m.style, m.tv, m.total, m.step_seconds, e.style, e.content, e.tv, "
      "e.style_norm, e.content_norm, e.tv_norm, e.ssim, e.color, 0 FROM runs r "
      "JOIN metrics m ON m.run_id = r.id AND m.attempt = r.attempt AND m.step = ?2 "
      "LEFT JOIN evaluations e ON e.run_id = m.run_id AND e.attempt = m.attempt AND e.step = m.step "
      "WHERE r.sweep_id = ?1 UNION ALL "
      "SELECT r.id, ?2, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1 FROM runs r "
      "WHERE r.sweep_id = ?1 AND r.diverged_step BETWEEN 0 AND ?2 "
      "ORDER BY 1",
      absl::StrCat("read step ", step, " of sweep ", sweep_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sweep_id);
  stmt->Bind(2, step);
  return CollectRows<RunMetricAtStep>(*stmt, [](const Statement& row) {
    RunMetricAtStep m;
    m.run_id = row.ColumnInt64(0);
    m.row = ReadMetricRow(row, 1);
    m.diverged = row.ColumnInt(15) != 0;
    return m;
  });
}

absl::Status SqliteStore::RequestPrune(int64_t run_id, int attempt) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("prune run ", run_id, " attempt ", attempt);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = CheckHeld(run_id, attempt); !s.ok()) return s;
  absl::StatusOr<Statement> mark = db_.Prepare("UPDATE runs SET prune_requested = 1 WHERE id = ?1", purpose);
  if (!mark.ok()) return mark.status();
  mark->Bind(1, run_id);
  if (absl::Status s = mark->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::StatusOr<SweepRecord> SqliteStore::GetSweep(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  return ReadSweep(sweep_id);
}

absl::StatusOr<SweepRecord> SqliteStore::FindSweep(const std::string& id_or_name) {
  absl::MutexLock lock(&mu_);
  int64_t id = 0;
  if (IsDecimal(id_or_name) && absl::SimpleAtoi(id_or_name, &id)) {
    absl::StatusOr<SweepRecord> sweep = ReadSweep(id);
    if (!absl::IsNotFound(sweep.status())) return sweep;
  }
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE name = ?1 ORDER BY id DESC LIMIT 1"),
                  absl::StrCat("find sweep '", id_or_name, "'"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id_or_name);
  absl::StatusOr<std::vector<SweepRecord>> sweeps = CollectRows<SweepRecord>(*stmt, SweepFromRow);
  if (!sweeps.ok()) return sweeps.status();
  if (sweeps->empty()) {
    return absl::NotFoundError(IsDecimal(id_or_name) ? absl::StrCat("no sweep with id or name '", id_or_name, "'")
                                                     : absl::StrCat("no sweep named '", id_or_name, "'"));
  }
  return std::move(sweeps->front());
}

absl::StatusOr<std::vector<SweepRecord>> SqliteStore::ListSweeps(bool with_text) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", with_text ? kSweepColumns : kSweepColumnsWithoutText, " FROM sweeps ORDER BY id"),
      "list sweeps");
  if (!stmt.ok()) return stmt.status();
  return CollectRows<SweepRecord>(*stmt, SweepFromRow);
}

absl::StatusOr<std::vector<SweepRecord>> SqliteStore::ListOpenSearchSweeps() {
  absl::MutexLock lock(&mu_);
  // The partial index sweeps_open_search holds exactly the candidates.
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kSweepColumnsWithoutText,
                   " FROM sweeps WHERE method = 'bayes' AND draws < run_cap AND paused = 0 ORDER BY id"),
      "list the search sweeps that may propose runs");
  if (!stmt.ok()) return stmt.status();
  return CollectRows<SweepRecord>(*stmt, SweepFromRow);
}

absl::StatusOr<std::vector<SweepTotals>> SqliteStore::TotalSweeps(int64_t sweep_id) {
  if (sweep_id <= 0) return TotalSweepsBetween(1, std::numeric_limits<int64_t>::max());
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<SweepTotals>> totals = TotalSweepsBetween(sweep_id, sweep_id);
  if (totals.ok() && totals->empty()) totals->push_back(SweepTotals{sweep_id, {}, 0, 0});
  return totals;
}

absl::StatusOr<std::vector<SweepTotals>> SqliteStore::TotalSweepsBetween(int64_t first_id, int64_t last_id) {
  absl::MutexLock lock(&mu_);
  // Counts and steps from the runs_totals index alone (it covers them);
  // the steps PRUNED runs saved need their planned steps, read for those
  // runs only.
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT sweep_id, state, count(*), sum(max(last_step, 0)), "
      "CASE WHEN state = 'PRUNED' THEN (SELECT sum(max(0, coalesce(json_extract(p.params_json, "
      "'$.steps'), 0) - max(p.last_step, 0))) FROM runs p WHERE p.state = 'PRUNED' AND "
      "p.sweep_id = runs.sweep_id) ELSE 0 END FROM runs INDEXED BY runs_totals "
      "WHERE sweep_id BETWEEN ?1 AND ?2 GROUP BY sweep_id, state ORDER BY sweep_id",
      "add up the runs of sweeps");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, first_id);
  stmt->Bind(2, last_id);
  std::vector<SweepTotals> totals;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const int64_t id = stmt->ColumnInt64(0);
    absl::StatusOr<RunState> state = StateColumn(*stmt, 1, absl::StrCat("a run of sweep ", id));
    if (!state.ok()) return state.status();
    if (totals.empty() || totals.back().sweep_id != id) totals.push_back(SweepTotals{id, {}, 0, 0});
    SweepTotals& t = totals.back();
    t.runs_by_state[*state] = stmt->ColumnInt64(2);
    t.steps_run += stmt->ColumnInt64(3);
    t.steps_saved += stmt->ColumnInt64(4);
  }
  return totals;
}

absl::StatusOr<std::vector<SweepRecord>> SqliteStore::ListSweepsPage(int64_t after_id, int limit, bool with_text) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", with_text ? kSweepColumns : kSweepColumnsWithoutText,
                   " FROM sweeps WHERE id > ?1 ORDER BY id LIMIT ?2"),
      "list a page of sweeps");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, after_id);
  stmt->Bind(2, std::max(limit, 0));
  return CollectRows<SweepRecord>(*stmt, SweepFromRow);
}

absl::StatusOr<DeletedSweep> SqliteStore::DeleteSweep(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("delete sweep ", sweep_id);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<SweepRecord> sweep = ReadSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  absl::StatusOr<int64_t> active = QueryInt(
      db_, absl::StrCat("SELECT count(*) FROM runs WHERE sweep_id = ", sweep_id, " AND state IN ('QUEUED', 'RUNNING')"),
      purpose);
  if (!active.ok()) return active.status();
  if (*active > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sweep ", sweep_id, " '", sweep->name, "' still has ", *active,
        " queued or running runs; cancel it first (stylesweep cancel, or delete --cancel)"));
  }
  DeletedSweep deleted;
  deleted.sweep = *sweep;
  deleted.sweep.yaml.clear();
  deleted.sweep.spec_json.clear();

  absl::StatusOr<Statement> paths = db_.Prepare(
      "SELECT s.path FROM snapshots s JOIN runs r ON r.id = s.run_id WHERE r.sweep_id = ?1 ORDER BY s.path",
      absl::StrCat(purpose, ": list snapshots"));
  if (!paths.ok()) return paths.status();
  paths->Bind(1, sweep_id);
  absl::StatusOr<std::vector<std::string>> snapshot_paths =
      CollectRows<std::string>(*paths, [](const Statement& row) { return row.ColumnText(0); });
  if (!snapshot_paths.ok()) return snapshot_paths.status();
  deleted.snapshot_paths = *std::move(snapshot_paths);

  // Image blobs are named in each sweep's spec ("images": {blob id: name}).
  absl::StatusOr<Statement> blobs = db_.Prepare(
      "SELECT DISTINCT mine.key FROM sweeps s, json_each(s.spec_json, '$.images') mine WHERE s.id = ?1 AND "
      "json_valid(s.spec_json) AND NOT EXISTS (SELECT 1 FROM sweeps o, json_each(o.spec_json, '$.images') theirs "
      "WHERE o.id <> ?1 AND json_valid(o.spec_json) AND theirs.key = mine.key) ORDER BY mine.key",
      absl::StrCat(purpose, ": find unshared images"));
  if (!blobs.ok()) return blobs.status();
  blobs->Bind(1, sweep_id);
  absl::StatusOr<std::vector<std::string>> unshared =
      CollectRows<std::string>(*blobs, [](const Statement& row) { return row.ColumnText(0); });
  if (!unshared.ok()) return unshared.status();
  deleted.unshared_blobs = *std::move(unshared);

  static constexpr const char* kDeletes[] = {
      // Evaluations first: each refers to its step's metrics row.
      "DELETE FROM evaluations WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ?1)",
      "DELETE FROM metrics WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ?1)",
      "DELETE FROM snapshots WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ?1)",
      "DELETE FROM run_avoids_agent WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ?1)",
      "DELETE FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE sweep_id = ?1)",
      "DELETE FROM runs WHERE sweep_id = ?1",
      "DELETE FROM sweeps WHERE id = ?1",
  };
  for (size_t i = 0; i < std::size(kDeletes); ++i) {
    absl::StatusOr<Statement> del = db_.Prepare(kDeletes[i], purpose);
    if (!del.ok()) return del.status();
    del->Bind(1, sweep_id);
    if (absl::Status s = del->Run(); !s.ok()) return s;
    if (i == 1) deleted.metric_rows = db_.Changes();
    if (i == 5) deleted.runs = db_.Changes();
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return deleted;
}

absl::StatusOr<RunRecord> SqliteStore::GetRun(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  return ReadRun(run_id);
}

absl::StatusOr<std::vector<RunRecord>> SqliteStore::ListRuns(int64_t sweep_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE sweep_id = ?1 ORDER BY idx"),
                  absl::StrCat("list runs of sweep ", sweep_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sweep_id);
  return CollectRows<RunRecord>(*stmt, RunFromRow);
}

absl::StatusOr<std::vector<RunRecord>> SqliteStore::ListRunsPage(int64_t sweep_id, const RunPageRequest& page) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  std::string states;
  for (RunState state : page.states) {
    absl::StrAppend(&states, states.empty() ? "" : ", ", "'", StateName(state), "'");
  }
  // A seek on the (sweep_id, idx) key: the cost is the page's, wherever it is.
  absl::StatusOr<Statement> stmt = db_.Prepare(
      absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE sweep_id = ?1 AND idx > ?2",
                   states.empty() ? "" : absl::StrCat(" AND state IN (", states, ")"), " ORDER BY idx LIMIT ?3"),
      absl::StrCat("list a page of the runs of sweep ", sweep_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, sweep_id);
  stmt->Bind(2, page.after_index);
  stmt->Bind(3, std::max(page.limit, 0));
  return CollectRows<RunRecord>(*stmt, RunFromRow);
}

absl::StatusOr<std::vector<RunCount>> SqliteStore::CountRuns() {
  absl::MutexLock lock(&mu_);
  // runs_by_state (state, sweep_id, idx) covers the grouping.
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT r.sweep_id, s.name, r.state, COUNT(*) FROM runs r JOIN sweeps s ON s.id = r.sweep_id "
      "GROUP BY r.sweep_id, r.state ORDER BY r.sweep_id",
      "count runs by sweep and state");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<std::vector<RunCount>> counts =
      CollectRows<RunCount>(*stmt, [](const Statement& row) -> absl::StatusOr<RunCount> {
        RunCount count;
        count.sweep_id = row.ColumnInt64(0);
        count.sweep_name = row.ColumnText(1);
        absl::StatusOr<RunState> state = StateColumn(row, 2, absl::StrCat("a run of sweep ", count.sweep_id));
        if (!state.ok()) return state.status();
        count.state = *state;
        count.runs = row.ColumnInt64(3);
        return count;
      });
  if (!counts.ok()) return counts.status();
  // SQL orders states by their text; users read them in the order of a run's life.
  std::stable_sort(counts->begin(), counts->end(), [](const RunCount& a, const RunCount& b) {
    return a.sweep_id != b.sweep_id ? a.sweep_id < b.sweep_id : a.state < b.state;
  });
  return counts;
}

absl::StatusOr<std::vector<AttemptRecord>> SqliteStore::ListAttempts(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadRun(run_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT run_id, attempt, agent, state, started_ms, finished_ms, error, log_tail FROM attempts "
      "WHERE run_id = ?1 ORDER BY attempt",
      absl::StrCat("list attempts of run ", run_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  return CollectRows<AttemptRecord>(*stmt, AttemptFromRow);
}

absl::StatusOr<std::vector<MetricRow>> SqliteStore::GetMetrics(int64_t run_id, int attempt) {
  return GetMetricsPage(run_id, attempt, 0, std::numeric_limits<int>::max());
}

absl::StatusOr<std::vector<MetricRow>> SqliteStore::GetMetricsPage(int64_t run_id, int attempt, int from_step,
                                                                   int limit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (attempt == 0) attempt = run->attempt;
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT m.step, m.content, m.style, m.tv, m.total, m.step_seconds, e.style, e.content, e.tv, e.style_norm, "
      "e.content_norm, e.tv_norm, e.ssim, e.color FROM metrics m LEFT JOIN evaluations e "
      "ON e.run_id = m.run_id AND e.attempt = m.attempt AND e.step = m.step "
      "WHERE m.run_id = ?1 AND m.attempt = ?2 AND m.step >= ?3 ORDER BY m.step LIMIT ?4",
      absl::StrCat("read metrics of run ", run_id, " attempt ", attempt));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  stmt->Bind(2, attempt);
  stmt->Bind(3, from_step);
  stmt->Bind(4, std::max(limit, 0));
  return CollectRows<MetricRow>(*stmt, [](const Statement& row) {
    return ReadMetricRow(row, 0);
  });
}

absl::StatusOr<std::vector<SnapshotRecord>> SqliteStore::ListSnapshots(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadRun(run_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT run_id, attempt, step, path, is_final, sha256 FROM snapshots WHERE run_id = ?1 ORDER BY attempt, step",
      absl::StrCat("list snapshots of run ", run_id));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  return CollectRows<SnapshotRecord>(*stmt, SnapshotFromRow);
}

absl::StatusOr<std::optional<Lease>> SqliteStore::ClaimNextRun(const std::string& agent, int64_t now_ms,
                                                               int64_t lease_expires_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("claim a run for agent '", agent, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();

  // Walks the sweeps that have queued runs, oldest first, one seek in the
  // runs_by_state index each, so a paused sweep's many queued runs (or a
  // long history) cost nothing: only sweeps with work waiting are visited.
  absl::StatusOr<Statement> next_sweep = db_.Prepare(
      "SELECT min(sweep_id) FROM runs WHERE state = 'QUEUED' AND sweep_id > ?1", absl::StrCat(purpose, ": next sweep"));
  if (!next_sweep.ok()) return next_sweep.status();
  absl::StatusOr<Statement> eligible = db_.Prepare(
      "SELECT s.paused = 0 AND (s.max_concurrent = 0 OR (SELECT count(*) FROM runs b WHERE b.sweep_id = s.id AND "
      "b.state = 'RUNNING') < s.max_concurrent) FROM sweeps s WHERE s.id = ?1",
      absl::StrCat(purpose, ": check sweep"));
  if (!eligible.ok()) return eligible.status();
  absl::StatusOr<Statement> first_run = db_.Prepare(
      "SELECT r.id FROM runs r WHERE r.state = 'QUEUED' AND r.sweep_id = ?1 AND NOT EXISTS (SELECT 1 FROM "
      "run_avoids_agent v WHERE v.run_id = r.id AND v.agent = ?2) ORDER BY r.idx LIMIT 1",
      absl::StrCat(purpose, ": find"));
  if (!first_run.ok()) return first_run.status();
  int64_t run_id = 0;
  for (int64_t after = 0; run_id == 0;) {
    next_sweep->Reset();
    next_sweep->Bind(1, after);
    absl::StatusOr<bool> row = next_sweep->Step();
    if (!row.ok()) return row.status();
    if (!*row || next_sweep->ColumnText(0).empty()) return std::optional<Lease>();  // min() of nothing: NULL
    const int64_t sweep_id = next_sweep->ColumnInt64(0);
    after = sweep_id;
    eligible->Reset();
    eligible->Bind(1, sweep_id);
    absl::StatusOr<bool> found = eligible->Step();
    if (!found.ok()) return found.status();
    if (!*found || eligible->ColumnInt(0) == 0) continue;
    first_run->Reset();
    first_run->Bind(1, sweep_id);
    first_run->Bind(2, agent);
    absl::StatusOr<bool> run = first_run->Step();
    if (!run.ok()) return run.status();
    if (*run) run_id = first_run->ColumnInt64(0);
  }

  absl::StatusOr<Statement> lease = db_.Prepare(
      "UPDATE runs SET state = 'RUNNING', attempt = attempt + 1, agent = ?2, started_ms = ?3, "
      "lease_expires_ms = ?4, finished_ms = 0, error = '', last_step = -1, content_loss = 0, style_loss = 0, "
      "tv_loss = 0, total_loss = 0, final_snapshot = '', prune_requested = 0, log_tail = '', diverged_step = -1, "
      "eval_step = -1 WHERE id = ?1",
      absl::StrCat(purpose, ": lease run ", run_id));
  if (!lease.ok()) return lease.status();
  lease->Bind(1, run_id);
  lease->Bind(2, agent);
  lease->Bind(3, now_ms);
  lease->Bind(4, lease_expires_ms);
  if (absl::Status s = lease->Run(); !s.ok()) return s;

  absl::StatusOr<Statement> start_attempt = db_.Prepare(
      "INSERT INTO attempts (run_id, attempt, agent, state, started_ms) "
      "SELECT id, attempt, agent, 'RUNNING', started_ms FROM runs WHERE id = ?1",
      absl::StrCat(purpose, ": record attempt of run ", run_id));
  if (!start_attempt.ok()) return start_attempt.status();
  start_attempt->Bind(1, run_id);
  if (absl::Status s = start_attempt->Run(); !s.ok()) return s;

  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  const int attempt = run->attempt;
  return std::optional<Lease>(Lease{*std::move(run), attempt});
}

absl::Status SqliteStore::CheckAttemptOwner(int64_t run_id, int attempt, const std::string& agent) {
  absl::MutexLock lock(&mu_);
  return CheckOwner(run_id, attempt, agent);
}

absl::Status SqliteStore::CheckOwner(int64_t run_id, int attempt, const std::string& agent) {
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT agent FROM attempts WHERE run_id = ?1 AND attempt = ?2",
                                               absl::StrCat("check who holds run ", run_id, " attempt ", attempt));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  stmt->Bind(2, attempt);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (*row && stmt->ColumnText(0) == agent) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("agent '", agent, "' does not hold run ", run_id, " attempt ",
                                                  attempt, ": only the agent it was leased to may act on it"));
}

absl::Status SqliteStore::RenewLease(int64_t run_id, int attempt, int64_t lease_expires_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("renew the lease of run ", run_id, " attempt ", attempt);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = CheckHeld(run_id, attempt); !s.ok()) return s;
  // max(): a retried heartbeat that arrives after a newer one must not pull
  // the expiry back.
  absl::StatusOr<Statement> renew =
      db_.Prepare("UPDATE runs SET lease_expires_ms = max(lease_expires_ms, ?2) WHERE id = ?1", purpose);
  if (!renew.ok()) return renew.status();
  renew->Bind(1, run_id);
  renew->Bind(2, lease_expires_ms);
  if (absl::Status s = renew->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::StatusOr<int> SqliteStore::ExtendRunningLeases(int64_t lease_expires_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = "extend the leases of running runs";
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<Statement> extend = db_.Prepare(
      "UPDATE runs SET lease_expires_ms = max(lease_expires_ms, ?1) WHERE state = 'RUNNING'", purpose);
  if (!extend.ok()) return extend.status();
  extend->Bind(1, lease_expires_ms);
  if (absl::Status s = extend->Run(); !s.ok()) return s;
  const int changed = db_.Changes();
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return changed;
}

absl::Status SqliteStore::AppendMetrics(int64_t run_id, int attempt, const std::vector<MetricRow>& rows) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("append metrics of run ", run_id, " attempt ", attempt);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = CheckHeld(run_id, attempt); !s.ok()) return s;

  // ON CONFLICT on the key, not INSERT OR IGNORE: OR IGNORE would also drop
  // rows that break a CHECK (a negative step) without a word.
  absl::StatusOr<Statement> insert = db_.Prepare(
      "INSERT INTO metrics (run_id, attempt, step, content, style, tv, total, step_seconds) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (run_id, attempt, step) DO NOTHING",
      purpose);
  if (!insert.ok()) return insert.status();
  insert->Bind(1, run_id);
  insert->Bind(2, attempt);
  for (const MetricRow& row : rows) {
    insert->Reset();
    insert->Bind(3, row.step);
    insert->Bind(4, row.content);
    insert->Bind(5, row.style);
    insert->Bind(6, row.tv);
    insert->Bind(7, row.total);
    insert->Bind(8, row.step_seconds);
    if (absl::Status s = insert->Run(); !s.ok()) return s;
  }
  // A retried row's evaluation is a no-op like the row itself; one that
  // arrives for a stored row without one is added.
  absl::StatusOr<Statement> insert_eval = db_.Prepare(
      "INSERT INTO evaluations (run_id, attempt, step, style, content, tv, style_norm, content_norm, tv_norm, ssim, "
      "color) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (run_id, attempt, step) DO NOTHING",
      absl::StrCat(purpose, ": evaluations"));
  if (!insert_eval.ok()) return insert_eval.status();
  insert_eval->Bind(1, run_id);
  insert_eval->Bind(2, attempt);
  const MetricRow* latest_eval = nullptr;
  for (const MetricRow& row : rows) {
    if (!row.eval) continue;
    if (absl::Status s = CheckEvaluation(*row.eval); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(purpose, ": step ", row.step, ": ", s.message()));
    }
    insert_eval->Reset();
    insert_eval->Bind(3, row.step);
    BindEvaluation(*insert_eval, 4, *row.eval);
    if (absl::Status s = insert_eval->Run(); !s.ok()) return s;
    if (latest_eval == nullptr || latest_eval->step < row.step) latest_eval = &row;
  }
  if (latest_eval != nullptr) {
    // Read back what is stored for that step: a retry must not replace the
    // first evaluation on the run any more than in the table.
    absl::StatusOr<Statement> update = db_.Prepare(
        "UPDATE runs SET eval_step = e.step, eval_style = e.style, eval_content = e.content, eval_tv = e.tv, "
        "eval_style_norm = e.style_norm, eval_content_norm = e.content_norm, eval_tv_norm = e.tv_norm, "
        "eval_ssim = e.ssim, eval_color = e.color FROM (SELECT * FROM evaluations WHERE run_id = ?1 AND "
        "attempt = ?2 AND step = ?3) AS e WHERE runs.id = ?1 AND runs.eval_step < ?3",
        absl::StrCat(purpose, ": update latest evaluation"));
    if (!update.ok()) return update.status();
    update->Bind(1, run_id);
    update->Bind(2, attempt);
    update->Bind(3, latest_eval->step);
    if (absl::Status s = update->Run(); !s.ok()) return s;
  }

  // Rows may come out of order (a batch buffered while the coordinator was
  // away, then a retry), so the latest is the highest step, and only if it
  // is newer than what the run already shows.
  auto latest = std::max_element(rows.begin(), rows.end(),
                                 [](const MetricRow& a, const MetricRow& b) { return a.step < b.step; });
  if (latest != rows.end()) {
    absl::StatusOr<Statement> update = db_.Prepare(
        "UPDATE runs SET last_step = ?2, content_loss = ?3, style_loss = ?4, tv_loss = ?5, total_loss = ?6 "
        "WHERE id = ?1 AND last_step < ?2",
        absl::StrCat(purpose, ": update latest losses"));
    if (!update.ok()) return update.status();
    update->Bind(1, run_id);
    update->Bind(2, latest->step);
    update->Bind(3, latest->content);
    update->Bind(4, latest->style);
    update->Bind(5, latest->tv);
    update->Bind(6, latest->total);
    if (absl::Status s = update->Run(); !s.ok()) return s;
  }
  return txn->Commit();
}

absl::StatusOr<std::optional<SnapshotRecord>> SqliteStore::ReadSnapshot(int64_t run_id, int attempt, int step) {
  absl::StatusOr<Statement> stmt = db_.Prepare(
      "SELECT run_id, attempt, step, path, is_final, sha256 FROM snapshots WHERE run_id = ?1 AND attempt = ?2 AND "
      "step = ?3",
      absl::StrCat("read the snapshot of run ", run_id, " attempt ", attempt, " step ", step));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  stmt->Bind(2, attempt);
  stmt->Bind(3, step);
  absl::StatusOr<std::vector<SnapshotRecord>> found = CollectRows<SnapshotRecord>(*stmt, SnapshotFromRow);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<SnapshotRecord>();
  return std::optional<SnapshotRecord>(std::move(found->front()));
}

absl::StatusOr<std::optional<SnapshotRecord>> SqliteStore::FindSnapshot(int64_t run_id, int attempt, int step) {
  absl::MutexLock lock(&mu_);
  return ReadSnapshot(run_id, attempt, step);
}

absl::Status SqliteStore::AddSnapshot(const SnapshotRecord& snapshot,
                                      const std::function<absl::Status()>& before_commit) {
  absl::MutexLock lock(&mu_);
  const std::string purpose =
      absl::StrCat("add snapshot of run ", snapshot.run_id, " attempt ", snapshot.attempt, " step ", snapshot.step);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<RunRecord> run = ReadRun(snapshot.run_id);
  if (!run.ok()) return run.status();
  if (run->attempt != snapshot.attempt || run->state != RunState::kRunning) {
    return NotHeldError(snapshot.run_id, snapshot.attempt, *run);
  }
  absl::StatusOr<std::optional<SnapshotRecord>> existing =
      ReadSnapshot(snapshot.run_id, snapshot.attempt, snapshot.step);
  if (!existing.ok()) return existing.status();
  SnapshotRecord record = snapshot;
  if (existing->has_value()) {
    const SnapshotRecord& stored = **existing;
    if (stored.sha256 != snapshot.sha256) {
      return absl::AlreadyExistsError(absl::StrCat(
          "run ", snapshot.run_id, " attempt ", snapshot.attempt, " already has a different snapshot at step ",
          snapshot.step, " (", stored.path, "); a stored snapshot is never replaced"));
    }
    if (!snapshot.final || stored.final) return txn->Commit();  // a retried upload
    record = stored;  // the same image, now also the final one
    record.final = true;
  }
  if (record.final && !run->final_snapshot.empty() && run->final_snapshot != record.path) {
    return absl::AlreadyExistsError(absl::StrCat("run ", snapshot.run_id, " attempt ", snapshot.attempt,
                                                 " already has its final snapshot (", run->final_snapshot, ")"));
  }
  absl::StatusOr<Statement> write = db_.Prepare(
      existing->has_value()
          ? "UPDATE snapshots SET is_final = 1 WHERE run_id = ?1 AND attempt = ?2 AND step = ?3"
          : "INSERT INTO snapshots (run_id, attempt, step, path, is_final, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      purpose);
  if (!write.ok()) return write.status();
  write->Bind(1, record.run_id);
  write->Bind(2, record.attempt);
  write->Bind(3, record.step);
  if (!existing->has_value()) {
    write->Bind(4, record.path);
    write->Bind(5, record.final ? 1 : 0);
    write->Bind(6, record.sha256);
  }
  if (absl::Status s = write->Run(); !s.ok()) return s;

  if (record.final) {
    absl::StatusOr<Statement> mark =
        db_.Prepare("UPDATE runs SET final_snapshot = ?2 WHERE id = ?1", absl::StrCat(purpose, ": set final snapshot"));
    if (!mark.ok()) return mark.status();
    mark->Bind(1, record.run_id);
    mark->Bind(2, record.path);
    if (absl::Status s = mark->Run(); !s.ok()) return s;
  }
  if (!existing->has_value() && before_commit) {
    if (absl::Status s = before_commit(); !s.ok()) return s;  // rolls the record back
  }
  return txn->Commit();
}

absl::Status SqliteStore::FinishRun(int64_t run_id, int attempt, RunState state, const std::string& error,
                                    int64_t now_ms, const std::string& log_tail) {
  if (!IsTerminal(state)) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, " cannot be finished as ", StateName(state),
                                                   ": only SUCCEEDED, FAILED, CANCELLED or PRUNED end a run"));
  }
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("finish run ", run_id, " attempt ", attempt, " as ", StateName(state));
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();

  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt == attempt && run->state == state) return absl::OkStatus();  // a retried report
  if (run->attempt == attempt && IsTerminal(run->state)) {
    return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " attempt ", attempt, " already finished as ",
                                                      StateName(run->state), ", not ", StateName(state)));
  }
  if (run->attempt != attempt || run->state != RunState::kRunning) return NotHeldError(run_id, attempt, *run);
  if (absl::Status s = EndRun(*run, state, error, log_tail, -1, now_ms, purpose); !s.ok()) return s;
  return txn->Commit();
}

absl::StatusOr<CompletedAttempt> SqliteStore::CompleteAttempt(int64_t run_id, int attempt,
                                                              const AttemptOutcome& outcome, int64_t now_ms) {
  const RunState state = outcome.state;
  if (!IsTerminal(state) || state == RunState::kLost) {
    return absl::InvalidArgumentError(absl::StrCat("an agent may end a run as SUCCEEDED, FAILED, CANCELLED or "
                                                   "PRUNED, not ", StateName(state)));
  }
  if (outcome.diverged_step >= 0 && state != RunState::kFailed) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, ": a diverged run ends FAILED, not ",
                                                   StateName(state)));
  }
  absl::MutexLock lock(&mu_);
  const std::string purpose =
      absl::StrCat("complete run ", run_id, " attempt ", attempt, " as ", StateName(state), " for '", outcome.agent, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();

  if (absl::Status s = CheckOwner(run_id, attempt, outcome.agent); !s.ok()) return s;
  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt == attempt && run->state == state && run->diverged_step == outcome.diverged_step) {
    return CompletedAttempt{};  // a retried report: it counted the first time
  }
  if (run->attempt == attempt && IsTerminal(run->state)) {
    return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " attempt ", attempt, " already ended ",
                                                      StateName(run->state), run->diverged() ? " (diverged)" : "",
                                                      "; this report says ", StateName(state)));
  }
  if (run->attempt != attempt || run->state != RunState::kRunning) return NotHeldError(run_id, attempt, *run);
  if (state == RunState::kSucceeded && run->last_step < outcome.last_step) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_id, " attempt ", attempt, " cannot be SUCCEEDED: its losses reach step ", run->last_step,
        " of ", outcome.last_step, " (report the last step's losses first)"));
  }
  if (state == RunState::kPruned && !run->prune_requested) {
    return absl::FailedPreconditionError(absl::StrCat("run ", run_id, " attempt ", attempt,
                                                      " cannot be PRUNED: early termination did not ask it to stop"));
  }
  if ((state == RunState::kPruned || outcome.diverged_step >= 0) && run->final_snapshot.empty()) {
    // The agent sends its latest (finite) image as final; when it had none
    // to send, the latest stored one stands in.
    absl::StatusOr<Statement> latest = db_.Prepare(
        "UPDATE snapshots SET is_final = 1 WHERE run_id = ?1 AND attempt = ?2 AND step = (SELECT max(step) FROM "
        "snapshots WHERE run_id = ?1 AND attempt = ?2) RETURNING path",
        absl::StrCat(purpose, ": final snapshot"));
    if (!latest.ok()) return latest.status();
    latest->Bind(1, run_id);
    latest->Bind(2, attempt);
    absl::StatusOr<std::vector<std::string>> path =
        CollectRows<std::string>(*latest, [](const Statement& row) { return row.ColumnText(0); });
    if (!path.ok()) return path.status();
    if (!path->empty()) {
      absl::StatusOr<Statement> mark = db_.Prepare("UPDATE runs SET final_snapshot = ?2 WHERE id = ?1", purpose);
      if (!mark.ok()) return mark.status();
      mark->Bind(1, run_id);
      mark->Bind(2, path->front());
      if (absl::Status s = mark->Run(); !s.ok()) return s;
    }
  }
  if (absl::Status s = EndRun(*run, state, outcome.error, outcome.log_tail, outcome.diverged_step, now_ms, purpose);
      !s.ok()) {
    return s;
  }
  CompletedAttempt completed;
  completed.applied = true;
  if (outcome.counts_for_agent) {
    absl::StatusOr<AgentRecord> agent =
        CountOutcome(outcome.agent, state == RunState::kFailed, outcome.error, outcome.quarantine_after, purpose);
    if (!agent.ok()) return agent.status();
    completed.agent = *std::move(agent);
  } else {
    absl::StatusOr<AgentRecord> agent = ReadAgent(outcome.agent);
    if (!agent.ok()) return agent.status();
    completed.agent = *std::move(agent);
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return completed;
}

absl::Status SqliteStore::EndRun(const RunRecord& run, RunState state, const std::string& error,
                                 const std::string& log_tail, int diverged_step, int64_t now_ms,
                                 const std::string& purpose) {
  absl::StatusOr<Statement> finish_run = db_.Prepare(
      "UPDATE runs SET state = ?2, finished_ms = ?3, error = ?4, lease_expires_ms = 0, log_tail = ?5, "
      "diverged_step = ?6 WHERE id = ?1",
      purpose);
  if (!finish_run.ok()) return finish_run.status();
  finish_run->Bind(1, run.id);
  finish_run->Bind(2, RunStateName(state));
  finish_run->Bind(3, now_ms);
  finish_run->Bind(4, error);
  finish_run->Bind(5, log_tail);
  finish_run->Bind(6, diverged_step);
  if (absl::Status s = finish_run->Run(); !s.ok()) return s;

  absl::StatusOr<Statement> finish_attempt =
      db_.Prepare("UPDATE attempts SET state = ?3, finished_ms = ?4, error = ?5, log_tail = ?6 "
                  "WHERE run_id = ?1 AND attempt = ?2",
                  absl::StrCat(purpose, ": end attempt"));
  if (!finish_attempt.ok()) return finish_attempt.status();
  finish_attempt->Bind(1, run.id);
  finish_attempt->Bind(2, run.attempt);
  finish_attempt->Bind(3, RunStateName(state));
  finish_attempt->Bind(4, now_ms);
  finish_attempt->Bind(5, error);
  finish_attempt->Bind(6, log_tail);
  return finish_attempt->Run();
}

absl::Status SqliteStore::ReleaseRun(int64_t run_id, int attempt, const std::string& reason, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return RequeueAttempt(run_id, attempt, RunState::kCancelled, reason, "", now_ms,
                        absl::StrCat("hand back run ", run_id, " attempt ", attempt));
}

absl::Status SqliteStore::RequeueAttempt(int64_t run_id, int attempt, RunState ended, const std::string& error,
                                         const std::string& log_tail, int64_t now_ms, const std::string& purpose) {
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<RunRecord> run = ReadRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt != attempt || run->state != RunState::kRunning) {
    // A retried call finds the attempt already ended so and the run queued,
    // or claimed again as a later attempt. (A run that then failed for good
    // under this same attempt was not queued again.)
    absl::StatusOr<Statement> state =
        db_.Prepare("SELECT state FROM attempts WHERE run_id = ?1 AND attempt = ?2", purpose);
    if (!state.ok()) return state.status();
    state->Bind(1, run_id);
    state->Bind(2, attempt);
    absl::StatusOr<bool> row = state->Step();
    if (!row.ok()) return row.status();
    // A run that ended under this same attempt (failed for good, or
    // cancelled with its sweep) was not queued again: nothing to repeat.
    const bool ended_here = run->attempt == attempt && IsTerminal(run->state);
    if (*row && state->ColumnText(0) == RunStateName(ended) && !ended_here) return absl::OkStatus();
    return NotHeldError(run_id, attempt, *run);
  }
  if (ended == RunState::kFailed) {
    // Out of memory on this agent: never give it the run again.
    absl::StatusOr<Statement> avoid = db_.Prepare(
        "INSERT INTO run_avoids_agent (run_id, agent) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        absl::StrCat(purpose, ": avoid agent"));
    if (!avoid.ok()) return avoid.status();
    avoid->Bind(1, run_id);
    avoid->Bind(2, run->agent);
    if (absl::Status s = avoid->Run(); !s.ok()) return s;
  }
  absl::StatusOr<Statement> end_attempt = db_.Prepare(
      "UPDATE attempts SET state = ?3, finished_ms = ?4, error = ?5, log_tail = ?6 WHERE run_id = ?1 AND attempt = ?2",
      absl::StrCat(purpose, ": end attempt"));
  if (!end_attempt.ok()) return end_attempt.status();
  end_attempt->Bind(1, run_id);
  end_attempt->Bind(2, attempt);
  end_attempt->Bind(3, RunStateName(ended));
  end_attempt->Bind(4, now_ms);
  end_attempt->Bind(5, error);
  end_attempt->Bind(6, log_tail);
  if (absl::Status s = end_attempt->Run(); !s.ok()) return s;
  absl::StatusOr<Statement> requeue = db_.Prepare(
      "UPDATE runs SET state = 'QUEUED', agent = '', lease_expires_ms = 0, prune_requested = 0, error = ?2, "
      "log_tail = ?3 WHERE id = ?1",
      absl::StrCat(purpose, ": re-queue run"));
  if (!requeue.ok()) return requeue.status();
  requeue->Bind(1, run_id);
  requeue->Bind(2, error);
  requeue->Bind(3, log_tail);
  if (absl::Status s = requeue->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::Status SqliteStore::SetSweepPaused(int64_t sweep_id, bool paused) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat(paused ? "pause" : "resume", " sweep ", sweep_id);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> update = db_.Prepare("UPDATE sweeps SET paused = ?2 WHERE id = ?1", purpose);
  if (!update.ok()) return update.status();
  update->Bind(1, sweep_id);
  update->Bind(2, static_cast<int64_t>(paused ? 1 : 0));
  if (absl::Status s = update->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::StatusOr<int> SqliteStore::CancelSweep(int64_t sweep_id, const std::string& reason, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("cancel sweep ", sweep_id);
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> end_attempts = db_.Prepare(
      "UPDATE attempts SET state = 'CANCELLED', finished_ms = ?2, error = ?3 WHERE state = 'RUNNING' AND run_id IN "
      "(SELECT id FROM runs WHERE sweep_id = ?1 AND state = 'RUNNING')",
      absl::StrCat(purpose, ": end attempts"));
  if (!end_attempts.ok()) return end_attempts.status();
  end_attempts->Bind(1, sweep_id);
  end_attempts->Bind(2, now_ms);
  end_attempts->Bind(3, reason);
  if (absl::Status s = end_attempts->Run(); !s.ok()) return s;
  absl::StatusOr<Statement> end_runs = db_.Prepare(
      "UPDATE runs SET state = 'CANCELLED', finished_ms = ?2, error = ?3, lease_expires_ms = 0 "
      "WHERE sweep_id = ?1 AND state IN ('QUEUED', 'RUNNING')",
      absl::StrCat(purpose, ": end runs"));
  if (!end_runs.ok()) return end_runs.status();
  end_runs->Bind(1, sweep_id);
  end_runs->Bind(2, now_ms);
  end_runs->Bind(3, reason);
  if (absl::Status s = end_runs->Run(); !s.ok()) return s;
  const int cancelled = db_.Changes();
  // A bayes sweep proposes no more runs.
  absl::StatusOr<Statement> close =
      db_.Prepare("UPDATE sweeps SET run_cap = draws WHERE id = ?1 AND run_cap > draws", absl::StrCat(purpose, ": close"));
  if (!close.ok()) return close.status();
  close->Bind(1, sweep_id);
  if (absl::Status s = close->Run(); !s.ok()) return s;
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return cancelled;
}

absl::StatusOr<int> SqliteStore::RequeueRuns(int64_t sweep_id, const std::vector<RunState>& states) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("queue runs of sweep ", sweep_id, " again");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = ReadSweep(sweep_id).status(); !s.ok()) return s;
  int requeued = 0;
  for (RunState state : states) {
    if (state != RunState::kFailed && state != RunState::kLost && state != RunState::kCancelled) {
      return absl::InvalidArgumentError(
          absl::StrCat("only FAILED, LOST or CANCELLED runs can be queued again, not ", StateName(state)));
    }
    absl::StatusOr<Statement> requeue = db_.Prepare(
        "UPDATE runs SET state = 'QUEUED', agent = '', finished_ms = 0, lease_expires_ms = 0, prune_requested = 0 "
        "WHERE sweep_id = ?1 AND state = ?2",
        purpose);
    if (!requeue.ok()) return requeue.status();
    requeue->Bind(1, sweep_id);
    requeue->Bind(2, RunStateName(state));
    if (absl::Status s = requeue->Run(); !s.ok()) return s;
    requeued += db_.Changes();
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return requeued;
}

absl::StatusOr<std::vector<RunRecord>> SqliteStore::ExpireLeases(int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = "expire leases";
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();

  struct Expired {
    int64_t run_id;
    int attempt;
    std::string agent;
    int max_attempts;
    int lost_before;  // earlier attempts LOST (hand-backs do not count)
  };
  absl::StatusOr<Statement> find = db_.Prepare(
      "SELECT r.id, r.attempt, r.agent, s.max_attempts, "
      "(SELECT count(*) FROM attempts a WHERE a.run_id = r.id AND a.state = 'LOST') "
      "FROM runs r JOIN sweeps s ON s.id = r.sweep_id "
      "WHERE r.state = 'RUNNING' AND r.lease_expires_ms < ?1 ORDER BY r.sweep_id, r.idx",
      absl::StrCat(purpose, ": find"));
  if (!find.ok()) return find.status();
  find->Bind(1, now_ms);
  absl::StatusOr<std::vector<Expired>> expired = CollectRows<Expired>(*find, [](const Statement& row) {
    return Expired{row.ColumnInt64(0), row.ColumnInt(1), row.ColumnText(2), row.ColumnInt(3), row.ColumnInt(4)};
  });
  if (!expired.ok()) return expired.status();
  if (expired->empty()) return std::vector<RunRecord>();

  absl::StatusOr<Statement> lose_attempt =
      db_.Prepare("UPDATE attempts SET state = 'LOST', finished_ms = ?3, error = ?4 WHERE run_id = ?1 AND attempt = ?2",
                  absl::StrCat(purpose, ": end attempt"));
  if (!lose_attempt.ok()) return lose_attempt.status();
  absl::StatusOr<Statement> requeue =
      db_.Prepare("UPDATE runs SET state = 'QUEUED', agent = '', lease_expires_ms = 0, error = ?2 WHERE id = ?1",
                  absl::StrCat(purpose, ": re-queue run"));
  if (!requeue.ok()) return requeue.status();
  absl::StatusOr<Statement> lose_run =
      db_.Prepare("UPDATE runs SET state = 'LOST', lease_expires_ms = 0, finished_ms = ?2, error = ?3 WHERE id = ?1",
                  absl::StrCat(purpose, ": mark run lost"));
  if (!lose_run.ok()) return lose_run.status();

  std::vector<RunRecord> affected;
  for (const Expired& run : *expired) {
    const std::string error = absl::StrCat("lease expired; agent ", run.agent, " stopped heartbeating");
    lose_attempt->Reset();
    lose_attempt->Bind(1, run.run_id);
    lose_attempt->Bind(2, run.attempt);
    lose_attempt->Bind(3, now_ms);
    lose_attempt->Bind(4, error);
    if (absl::Status s = lose_attempt->Run(); !s.ok()) return s;

    if (run.lost_before + 1 < run.max_attempts) {
      requeue->Reset();
      requeue->Bind(1, run.run_id);
      requeue->Bind(2, error);
      if (absl::Status s = requeue->Run(); !s.ok()) return s;
    } else {
      lose_run->Reset();
      lose_run->Bind(1, run.run_id);
      lose_run->Bind(2, now_ms);
      lose_run->Bind(3, error);
      if (absl::Status s = lose_run->Run(); !s.ok()) return s;
    }

    absl::StatusOr<RunRecord> after = ReadRun(run.run_id);
    if (!after.ok()) return after.status();
    affected.push_back(*std::move(after));
  }
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return affected;
}

absl::Status SqliteStore::RetryElsewhere(int64_t run_id, int attempt, const std::string& error,
                                         const std::string& log_tail, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  return RequeueAttempt(run_id, attempt, RunState::kFailed, error, log_tail, now_ms,
                        absl::StrCat("give run ", run_id, " to another agent after attempt ", attempt));
}

absl::StatusOr<std::vector<std::string>> SqliteStore::AgentsAvoidedBy(int64_t run_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = ReadRun(run_id).status(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT agent FROM run_avoids_agent WHERE run_id = ?1 ORDER BY agent",
                                               absl::StrCat("list agents run ", run_id, " avoids"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, run_id);
  return CollectRows<std::string>(*stmt, [](const Statement& row) { return row.ColumnText(0); });
}

absl::Status SqliteStore::UpsertAgent(const AgentRecord& agent, int64_t live_since_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("register agent '", agent.name, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::StatusOr<AgentRecord> existing = ReadAgent(agent.name); existing.ok()) {
    if (existing->credential != agent.credential && existing->last_seen_ms >= live_since_ms) {
      return absl::AlreadyExistsError(absl::StrCat(
          "agent '", agent.name, "' is live (seen ", std::max<int64_t>(agent.last_seen_ms - existing->last_seen_ms, 0),
          " ms ago) and registered with another credential; a name passes to another credential only once its "
          "agent is lost (silent for a lease)"));
    }
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  absl::StatusOr<Statement> upsert = db_.Prepare(
      "INSERT INTO agents (name, host, device, description, registered_ms, last_seen_ms, device_name, "
      "memory_bytes, slots, credential) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
      "ON CONFLICT (name) DO UPDATE SET host = excluded.host, device = excluded.device, "
      "description = excluded.description, registered_ms = excluded.registered_ms, "
      "last_seen_ms = excluded.last_seen_ms, device_name = excluded.device_name, "
      "memory_bytes = excluded.memory_bytes, slots = excluded.slots, credential = excluded.credential, "
      "run_id = 0, attempt = 0, step = 0, steps = 0, steps_per_second = 0, draining = 0",
      purpose);
  if (!upsert.ok()) return upsert.status();
  upsert->Bind(1, agent.name);
  upsert->Bind(2, agent.host);
  upsert->Bind(3, agent.device);
  upsert->Bind(4, agent.description);
  upsert->Bind(5, agent.registered_ms);
  upsert->Bind(6, agent.last_seen_ms);
  upsert->Bind(7, agent.device_name);
  upsert->Bind(8, std::max<int64_t>(agent.memory_bytes, 0));
  upsert->Bind(9, static_cast<int64_t>(std::max(agent.slots, 1)));
  upsert->Bind(10, agent.credential);
  if (absl::Status s = upsert->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::Status SqliteStore::RecordAgentActivity(const std::string& name, int64_t now_ms, const AgentActivity& activity) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("record what agent '", name, "' does");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  if (absl::Status s = ReadAgent(name).status(); !s.ok()) return s;
  // Reports handled out of order must not make an agent look older, nor
  // bring back what it did before.
  absl::StatusOr<Statement> update = db_.Prepare(
      "UPDATE agents SET last_seen_ms = ?2, run_id = ?3, attempt = ?4, step = ?5, steps = ?6, "
      "steps_per_second = ?7, draining = ?8 WHERE name = ?1 AND last_seen_ms <= ?2",
      purpose);
  if (!update.ok()) return update.status();
  update->Bind(1, name);
  update->Bind(2, now_ms);
  update->Bind(3, activity.run_id);
  update->Bind(4, static_cast<int64_t>(activity.attempt));
  update->Bind(5, static_cast<int64_t>(activity.step));
  update->Bind(6, static_cast<int64_t>(activity.steps));
  update->Bind(7, activity.steps_per_second);
  update->Bind(8, static_cast<int64_t>(activity.draining ? 1 : 0));
  if (absl::Status s = update->Run(); !s.ok()) return s;
  return txn->Commit();
}

absl::StatusOr<AgentRecord> SqliteStore::RecordAgentOutcome(const std::string& name, bool failed,
                                                            const std::string& error, int quarantine_after) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("count a run ended by agent '", name, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<AgentRecord> agent = CountOutcome(name, failed, error, quarantine_after, purpose);
  if (!agent.ok()) return agent.status();
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return agent;
}

absl::StatusOr<AgentRecord> SqliteStore::CountOutcome(const std::string& name, bool failed, const std::string& error,
                                                      int quarantine_after, const std::string& purpose) {
  absl::StatusOr<AgentRecord> agent = ReadAgent(name);
  if (!agent.ok()) return agent.status();
  agent->runs_finished += 1;
  if (failed) {
    agent->failures += 1;
    agent->consecutive_failures += 1;
    if (quarantine_after > 0 && agent->consecutive_failures >= quarantine_after &&
        agent->quarantine_reason.empty()) {
      agent->quarantine_reason = absl::StrCat(agent->consecutive_failures, " runs in a row failed; the last: ", error);
    }
  } else {
    agent->consecutive_failures = 0;
  }
  absl::StatusOr<Statement> update = db_.Prepare(
      "UPDATE agents SET runs_finished = ?2, failures = ?3, consecutive_failures = ?4, quarantine_reason = ?5 "
      "WHERE name = ?1",
      absl::StrCat(purpose, ": count the outcome"));
  if (!update.ok()) return update.status();
  update->Bind(1, name);
  update->Bind(2, static_cast<int64_t>(agent->runs_finished));
  update->Bind(3, static_cast<int64_t>(agent->failures));
  update->Bind(4, static_cast<int64_t>(agent->consecutive_failures));
  update->Bind(5, agent->quarantine_reason);
  if (absl::Status s = update->Run(); !s.ok()) return s;
  return agent;
}

absl::StatusOr<bool> SqliteStore::ReleaseAgent(const std::string& name) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("release agent '", name, "' from quarantine");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<AgentRecord> agent = ReadAgent(name);
  if (!agent.ok()) return agent.status();
  absl::StatusOr<Statement> update =
      db_.Prepare("UPDATE agents SET quarantine_reason = '', consecutive_failures = 0 WHERE name = ?1", purpose);
  if (!update.ok()) return update.status();
  update->Bind(1, name);
  if (absl::Status s = update->Run(); !s.ok()) return s;
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return !agent->quarantine_reason.empty();
}

absl::StatusOr<AgentRecord> SqliteStore::GetAgent(const std::string& name) {
  absl::MutexLock lock(&mu_);
  return ReadAgent(name);
}

absl::StatusOr<AgentRecord> SqliteStore::ReadAgent(const std::string& name) {
  absl::StatusOr<Statement> stmt = db_.Prepare(absl::StrCat("SELECT ", kAgentColumns, " FROM agents WHERE name = ?1"),
                                               absl::StrCat("read agent '", name, "'"));
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, name);
  absl::StatusOr<std::vector<AgentRecord>> agents = CollectRows<AgentRecord>(*stmt, AgentFromRow);
  if (!agents.ok()) return agents.status();
  if (agents->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no agent named '", name, "' has registered (stylesweep agents lists them)"));
  }
  return agents->front();
}

absl::StatusOr<std::vector<AgentRecord>> SqliteStore::ListAgents() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kAgentColumns, " FROM agents ORDER BY name"), "list agents");
  if (!stmt.ok()) return stmt.status();
  return CollectRows<AgentRecord>(*stmt, AgentFromRow);
}

absl::StatusOr<int64_t> SqliteStore::CreateCredential(const CredentialRecord& credential) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("create credential '", credential.name, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  absl::StatusOr<Statement> insert = db_.Prepare(
      "INSERT INTO credentials (name, role, agent_names, salt, secret_hash, created_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      purpose);
  if (!insert.ok()) return insert.status();
  insert->Bind(1, credential.name);
  insert->Bind(2, credential.role);
  insert->Bind(3, credential.agent_names);
  insert->Bind(4, credential.salt);
  insert->Bind(5, credential.secret_hash);
  insert->Bind(6, credential.created_ms);
  if (absl::Status s = insert->Run(); !s.ok()) {
    if (absl::IsAlreadyExists(s)) {
      return absl::AlreadyExistsError(absl::StrCat("a credential named '", credential.name,
                                                   "' exists (names are never reused, even once revoked)"));
    }
    return s;
  }
  const int64_t id = db_.LastInsertRowId();
  if (absl::Status s = txn->Commit(); !s.ok()) return s;
  return id;
}

absl::StatusOr<CredentialRecord> SqliteStore::GetCredential(int64_t id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kCredentialColumns, " FROM credentials WHERE id = ?1"), "read a credential");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id);
  absl::StatusOr<std::vector<CredentialRecord>> rows = CollectRows<CredentialRecord>(*stmt, CredentialFromRow);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return absl::NotFoundError(absl::StrCat("no credential ", id));
  return rows->front();
}

absl::StatusOr<std::vector<CredentialRecord>> SqliteStore::ListCredentials() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt =
      db_.Prepare(absl::StrCat("SELECT ", kCredentialColumns, " FROM credentials ORDER BY id"), "list credentials");
  if (!stmt.ok()) return stmt.status();
  return CollectRows<CredentialRecord>(*stmt, CredentialFromRow);
}

absl::StatusOr<CredentialRecord> SqliteStore::RevokeCredential(const std::string& id_or_name, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  const std::string purpose = absl::StrCat("revoke credential '", id_or_name, "'");
  absl::StatusOr<Transaction> txn = BeginWrite(purpose);
  if (!txn.ok()) return txn.status();
  // A name wins over an id: names may be digits.
  absl::StatusOr<Statement> find = db_.Prepare(
      absl::StrCat("SELECT ", kCredentialColumns,
                   " FROM credentials WHERE name = ?1 OR (CAST(id AS TEXT) = ?1 AND NOT EXISTS "
                   "(SELECT 1 FROM credentials WHERE name = ?1))"),
      purpose);
  if (!find.ok()) return find.status();
  find->Bind(1, id_or_name);
  absl::StatusOr<std::vector<CredentialRecord>> rows = CollectRows<CredentialRecord>(*find, CredentialFromRow);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return absl::NotFoundError(
        absl::StrCat("no credential named '", id_or_name, "' (stylesweep tokens list shows them)"));
  }
  CredentialRecord credential = rows->front();
  if (credential.revoked_ms == 0) {
    absl::StatusOr<Statement> update = db_.Prepare("UPDATE credentials SET revoked_ms = ?2 WHERE id = ?1", purpose);
    if (!update.ok()) return update.status();
    update->Bind(1, credential.id);
    update->Bind(2, std::max<int64_t>(now_ms, 1));
    if (absl::Status s = update->Run(); !s.ok()) return s;
    if (absl::Status s = txn->Commit(); !s.ok()) return s;
    credential.revoked_ms = std::max<int64_t>(now_ms, 1);
  }
  return credential;
}

absl::Status SqliteStore::NoteCredentialUse(int64_t id, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> update =
      db_.Prepare("UPDATE credentials SET last_used_ms = ?2 WHERE id = ?1 AND last_used_ms < ?2", "note a credential's use");
  if (!update.ok()) return update.status();
  update->Bind(1, id);
  update->Bind(2, now_ms);
  return update->Run();
}

absl::StatusOr<bool> SqliteStore::HasCredentials() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = db_.Prepare("SELECT EXISTS (SELECT 1 FROM credentials)", "look for credentials");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row && stmt->ColumnInt(0) != 0;
}

}  // namespace stylesweep
