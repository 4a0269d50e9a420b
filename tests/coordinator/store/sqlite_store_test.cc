#include "coordinator/store/sqlite_store.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "coordinator/store/migrations.h"
#include "coordinator/store/sqlite.h"
#include "tests/coordinator/store/store_contract.h"

namespace stylesweep::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreContractTest,
    ::testing::Values(StoreFactory{"InMemory", [](const std::string&) { return OpenSqliteStore(":memory:"); }},
                      StoreFactory{"File", [](const std::string& dir) { return OpenSqliteStore(dir + "/store.db"); }}),
    StoreFactoryName);

// What only a file can show: durability, readers beside the writer, the
// schema's version history.
AgentRecord Agent(const std::string& name, int64_t registered_ms, int64_t last_seen_ms) {
  AgentRecord agent;
  agent.name = name;
  agent.host = "host";
  agent.device = "cpu";
  agent.registered_ms = registered_ms;
  agent.last_seen_ms = last_seen_ms;
  return agent;
}

class SqliteStoreFileTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return scratch_.path() + "/stylesweep.db"; }

  ScratchDir scratch_;
};

// (version, name, applied_ms) rows of schema_migrations, read without the store.
std::vector<std::tuple<int64_t, std::string, int64_t>> RecordedMigrations(const std::string& path) {
  std::vector<std::tuple<int64_t, std::string, int64_t>> rows;
  absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, /*read_only=*/true);
  EXPECT_THAT(db, IsOk());
  if (!db.ok()) return rows;
  absl::StatusOr<sqlite::Statement> stmt =
      db->Prepare("SELECT version, name, applied_ms FROM schema_migrations ORDER BY version", "read migrations");
  EXPECT_THAT(stmt, IsOk());
  if (!stmt.ok()) return rows;
  while (true) {
    absl::StatusOr<bool> row = stmt->Step();
    EXPECT_THAT(row, IsOk());
    if (!row.ok() || !*row) return rows;
    rows.emplace_back(stmt->ColumnInt64(0), stmt->ColumnText(1), stmt->ColumnInt64(2));
  }
}

// Permission bits of `path`, or -1 when it cannot be examined.
int ModeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// The database holds every sweep: owner-only whatever the umask, and its
// -wal and -shm files with it (SQLite gives them the database's mode).
TEST_F(SqliteStoreFileTest, TheDatabaseIsOwnerOnly) {
  const mode_t old_umask = ::umask(022);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(DbPath());
  ASSERT_THAT(store, IsOk());
  ASSERT_THAT((*store)->CreateSweep(MakeSweep("private"), MakeRuns(1)), IsOk());
  ::umask(old_umask);
  EXPECT_EQ(ModeOf(DbPath()), 0600);
  ASSERT_TRUE(std::filesystem::exists(DbPath() + "-wal"));
  EXPECT_EQ(ModeOf(DbPath() + "-wal"), 0600);
  EXPECT_EQ(ModeOf(DbPath() + "-shm"), 0600);
}

// An existing database keeps the mode its owner gave it.
TEST_F(SqliteStoreFileTest, AnExistingDatabaseKeepsItsMode) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(DbPath()));
  }
  ASSERT_EQ(::chmod(DbPath().c_str(), 0640), 0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(DbPath()));
  EXPECT_EQ(ModeOf(DbPath()), 0640);
}

TEST_F(SqliteStoreFileTest, RunsAndMetricsSurviveReopening) {
  int64_t sweep_id = 0;
  int64_t run_id = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(DbPath()));
    ASSERT_OK_AND_ASSIGN(sweep_id, store->CreateSweep(MakeSweep("durable"), MakeRuns(2)));
    ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store->ClaimNextRun("agent-a", 10, 1000));
    ASSERT_TRUE(lease.has_value());
    run_id = lease->run.id;
    ASSERT_THAT(store->AppendMetrics(run_id, 1, {Metric(0, 1), Metric(1, 2), Metric(2, 3)}), IsOk());
    ASSERT_THAT(store->AddSnapshot({run_id, 1, 2, "durable/run0/2.png", false}), IsOk());
    ASSERT_THAT(store->UpsertAgent(Agent("agent-a", 5, 10), 0), IsOk());
  }

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(DbPath()));
  ASSERT_OK_AND_ASSIGN(SweepRecord sweep, store->FindSweep("durable"));
  EXPECT_EQ(sweep.id, sweep_id);
  ASSERT_OK_AND_ASSIGN(RunRecord run, store->GetRun(run_id));
  EXPECT_EQ(run.state, RunState::kRunning);
  EXPECT_EQ(run.attempt, 1);
  EXPECT_EQ(run.agent, "agent-a");
  EXPECT_EQ(run.lease_expires_ms, 1000);
  EXPECT_EQ(run.last_step, 2);
  EXPECT_EQ(run.total_loss, 9);
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics, store->GetMetrics(run_id, 0));
  EXPECT_EQ(Describe(metrics), Describe(std::vector<MetricRow>{Metric(0, 1), Metric(1, 2), Metric(2, 3)}));
  ASSERT_OK_AND_ASSIGN(std::vector<SnapshotRecord> snapshots, store->ListSnapshots(run_id));
  EXPECT_THAT(snapshots, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(std::vector<AgentRecord> agents, store->ListAgents());
  EXPECT_THAT(agents, SizeIs(1));

  // The reopened store carries on where the first left off.
  ASSERT_THAT(store->RenewLease(run_id, 1, 2000), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> next, store->ClaimNextRun("agent-b", 20, 1020));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->run.index, 1);
}

TEST_F(SqliteStoreFileTest, ReadOnlyStoreReadsBesideAWriterAndRefusesWrites) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> writer, OpenSqliteStore(DbPath()));
  ASSERT_THAT(writer->CreateSweep(MakeSweep("first"), MakeRuns(1)), IsOk());

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> reader, OpenSqliteStore(DbPath(), {/*read_only=*/true}));
  EXPECT_THAT(reader->FindSweep("first"), IsOk());

  // What the writer commits afterwards is visible to the open reader.
  ASSERT_THAT(writer->CreateSweep(MakeSweep("second"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, writer->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(writer->AppendMetrics(lease->run.id, 1, {Metric(0, 1)}), IsOk());
  EXPECT_THAT(reader->FindSweep("second"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics, reader->GetMetrics(lease->run.id, 0));
  EXPECT_THAT(metrics, SizeIs(1));

  const auto refused = StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read-only"));
  EXPECT_THAT(reader->CreateSweep(MakeSweep("third"), MakeRuns(1)), refused);
  EXPECT_THAT(reader->ClaimNextRun("agent-b", 0, 100), refused);
  EXPECT_THAT(reader->RenewLease(lease->run.id, 1, 500), refused);
  EXPECT_THAT(reader->AppendMetrics(lease->run.id, 1, {Metric(1, 1)}), refused);
  EXPECT_THAT(reader->AddSnapshot({lease->run.id, 1, 1, "x.png", true}), refused);
  EXPECT_THAT(reader->FinishRun(lease->run.id, 1, RunState::kSucceeded, "", 50), refused);
  EXPECT_THAT(reader->ExpireLeases(1000), refused);
  EXPECT_THAT(reader->UpsertAgent(Agent("agent-b", 0, 0), 0), refused);
  EXPECT_THAT(reader->RecordAgentActivity("agent-a", 1, {}), refused);
  EXPECT_THAT(reader->RecordAgentOutcome("agent-a", true, "x", 3), refused);
  EXPECT_THAT(reader->ReleaseAgent("agent-a"), refused);
  EXPECT_THAT(reader->RetryElsewhere(lease->run.id, 1, "x", "", 50), refused);

  ASSERT_OK_AND_ASSIGN(std::vector<SweepRecord> sweeps, writer->ListSweeps());
  EXPECT_THAT(sweeps, SizeIs(2));
  ASSERT_OK_AND_ASSIGN(RunRecord run, writer->GetRun(lease->run.id));
  EXPECT_EQ(run.lease_expires_ms, 100);
  EXPECT_EQ(run.last_step, 0);
  EXPECT_EQ(run.final_snapshot, "");
  EXPECT_THAT(writer->RenewLease(lease->run.id, 1, 500), IsOk());
}

TEST_F(SqliteStoreFileTest, ReadOnlyOpenOfAMissingFileIsNotFoundAndCreatesNothing) {
  EXPECT_THAT(OpenSqliteStore(DbPath(), {/*read_only=*/true}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(DbPath())));
  EXPECT_FALSE(std::filesystem::exists(DbPath()));
}

TEST_F(SqliteStoreFileTest, ReadOnlyOpenOfAnUnmigratedFileSaysToStartTheCoordinator) {
  std::ofstream(DbPath()).close();  // an empty file is an empty SQLite database
  EXPECT_THAT(
      OpenSqliteStore(DbPath(), {/*read_only=*/true}),
      StatusIs(absl::StatusCode::kFailedPrecondition, AllOf(HasSubstr(DbPath()), HasSubstr("start the coordinator"))));
  EXPECT_EQ(std::filesystem::file_size(DbPath()), 0u);
}

TEST_F(SqliteStoreFileTest, MigrationsAreRecordedAndNotReapplied) {
  ASSERT_THAT(OpenSqliteStore(DbPath()), IsOk());
  const auto first = RecordedMigrations(DbPath());
  const std::vector<Migration>& embedded = EmbeddedMigrations();
  ASSERT_THAT(first, SizeIs(embedded.size()));
  ASSERT_FALSE(embedded.empty());
  EXPECT_EQ(embedded.front().version, 1);
  for (size_t i = 0; i < embedded.size(); ++i) {
    EXPECT_EQ(std::get<0>(first[i]), embedded[i].version);
    EXPECT_EQ(std::get<1>(first[i]), embedded[i].file_name);
    EXPECT_GT(std::get<2>(first[i]), 0);
  }

  ASSERT_THAT(OpenSqliteStore(DbPath()), IsOk());
  EXPECT_EQ(RecordedMigrations(DbPath()), first);
}

TEST_F(SqliteStoreFileTest, DatabaseFromANewerStylesweepIsRefused) {
  ASSERT_THAT(OpenSqliteStore(DbPath()), IsOk());
  {
    ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(DbPath(), /*read_only=*/false));
    ASSERT_THAT(db.Exec("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 1)", "fake a future"), IsOk());
  }
  const auto newer = StatusIs(absl::StatusCode::kFailedPrecondition, AllOf(HasSubstr("9999"), HasSubstr("newer")));
  EXPECT_THAT(OpenSqliteStore(DbPath()), newer);
  EXPECT_THAT(OpenSqliteStore(DbPath(), {/*read_only=*/true}), newer);
}

TEST_F(SqliteStoreFileTest, FileIsInWalMode) {
  ASSERT_THAT(OpenSqliteStore(DbPath()), IsOk());
  ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(DbPath(), /*read_only=*/true));
  ASSERT_OK_AND_ASSIGN(sqlite::Statement mode, db.Prepare("PRAGMA journal_mode", "read journal mode"));
  ASSERT_OK_AND_ASSIGN(bool has_row, mode.Step());
  ASSERT_TRUE(has_row);
  EXPECT_EQ(mode.ColumnText(0), "wal");
}

}  // namespace
// A database written before the search methods (only 0001 applied) is
// brought up to date in place: its sweeps and runs keep their data and take
// the new columns' defaults.
TEST_F(SqliteStoreFileTest, VersionOneDatabaseMigratesKeepingItsRuns) {
  const std::vector<Migration>& embedded = EmbeddedMigrations();
  ASSERT_GE(embedded.size(), 2u);
  {
    ASSERT_OK_AND_ASSIGN(sqlite::Database db, sqlite::Database::Open(DbPath(), /*read_only=*/false));
    ASSERT_THAT(db.Exec(embedded[0].sql, "apply 0001"), IsOk());
    ASSERT_THAT(db.Exec("INSERT INTO schema_migrations VALUES (1, '0001_initial.sql', 1);"
                        "INSERT INTO sweeps (name, method, source, yaml, spec_json, max_attempts, created_ms) "
                        "VALUES ('old', 'grid', 'old.yaml', 'x', '{}', 3, 5);"
                        "INSERT INTO runs (sweep_id, idx, params_json, params_hash, created_ms) "
                        "VALUES (1, 0, '{}', 'h', 5);",
                        "an old sweep"),
                IsOk());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(DbPath()));
  EXPECT_THAT(RecordedMigrations(DbPath()), SizeIs(embedded.size()));
  ASSERT_OK_AND_ASSIGN(SweepRecord sweep, store->GetSweep(1));
  EXPECT_EQ(sweep.name, "old");
  EXPECT_EQ(sweep.content_hash, "");
  EXPECT_EQ(sweep.draws, 0);
  EXPECT_EQ(sweep.run_cap, 0);
  EXPECT_EQ(sweep.max_concurrent, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store->ListRuns(1));
  ASSERT_THAT(runs, SizeIs(1));
  EXPECT_EQ(runs[0].point_json, "");
  EXPECT_FALSE(runs[0].prune_requested);
  // And it works as a current database.
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store->ClaimNextRun("a", 10, 100));
  ASSERT_TRUE(lease.has_value());
  ASSERT_THAT(store->RequestPrune(lease->run.id, lease->attempt), IsOk());
}

}  // namespace stylesweep::testing
