#include "tests/coordinator/store/store_contract.h"

#include <stdlib.h>

#include <filesystem>
#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace stylesweep::testing {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

ScratchDir::ScratchDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "stylesweep-store-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << pattern << " failed";
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; }

void PrintTo(const StoreFactory& factory, std::ostream* out) { *out << factory.name; }

void StoreContractTest::SetUp() {
  absl::StatusOr<std::unique_ptr<Store>> store = GetParam().open(scratch_.path());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
}

NewSweep MakeSweep(const std::string& name, int max_attempts, int64_t created_ms) {
  NewSweep sweep;
  sweep.name = name;
  sweep.method = "grid";
  sweep.source = name + ".yaml";
  sweep.yaml = "name: " + name + "\n";
  sweep.spec_json = R"({"name":")" + name + R"("})";
  sweep.max_attempts = max_attempts;
  sweep.created_ms = created_ms;
  return sweep;
}

std::vector<NewRun> MakeRuns(const std::vector<int>& indexes) {
  std::vector<NewRun> runs;
  for (int index : indexes) {
    runs.push_back(NewRun{index, absl::StrCat(R"({"index":)", index, "}"), absl::StrCat("hash-", index), ""});
  }
  return runs;
}

std::vector<NewRun> MakeRuns(int count) {
  std::vector<int> indexes;
  for (int i = 0; i < count; ++i) indexes.push_back(i);
  return MakeRuns(indexes);
}

MetricRow Metric(int step, double base) { return MetricRow{step, base + 1, base + 2, base + 3, base + 6, 0.25}; }

std::string Describe(const RunRecord& run) {
  std::ostringstream out;
  out << "id=" << run.id << " sweep=" << run.sweep_id << " index=" << run.index << " params=" << run.params_json
      << " hash=" << run.params_hash << " state=" << RunStateName(run.state) << " attempt=" << run.attempt
      << " agent=" << run.agent << " created=" << run.created_ms << " started=" << run.started_ms
      << " finished=" << run.finished_ms << " lease=" << run.lease_expires_ms << " error=" << run.error
      << " last_step=" << run.last_step << " losses=" << run.content_loss << "/" << run.style_loss << "/" << run.tv_loss
      << "/" << run.total_loss << " final=" << run.final_snapshot;
  return out.str();
}

std::string Describe(const std::vector<AttemptRecord>& attempts) {
  std::ostringstream out;
  for (const AttemptRecord& a : attempts) {
    out << "[run=" << a.run_id << " attempt=" << a.attempt << " agent=" << a.agent << " state=" << RunStateName(a.state)
        << " started=" << a.started_ms << " finished=" << a.finished_ms << " error=" << a.error << "]";
  }
  return out.str();
}

std::string Describe(const std::vector<MetricRow>& rows) {
  std::ostringstream out;
  for (const MetricRow& r : rows) {
    out << "[step=" << r.step << " " << r.content << "/" << r.style << "/" << r.tv << "/" << r.total << " "
        << r.step_seconds << "s]";
  }
  return out.str();
}

std::string Describe(const std::vector<SnapshotRecord>& snapshots) {
  std::ostringstream out;
  for (const SnapshotRecord& s : snapshots) {
    out << "[run=" << s.run_id << " attempt=" << s.attempt << " step=" << s.step << " path=" << s.path
        << " final=" << s.final << "]";
  }
  return out.str();
}

namespace {

TEST_P(StoreContractTest, CreatedSweepAndRunsReadBack) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("starry", 2, 1234), MakeRuns(3)));

  ASSERT_OK_AND_ASSIGN(SweepRecord sweep, store_->GetSweep(id));
  EXPECT_EQ(sweep.id, id);
  EXPECT_EQ(sweep.name, "starry");
  EXPECT_EQ(sweep.method, "grid");
  EXPECT_EQ(sweep.source, "starry.yaml");
  EXPECT_EQ(sweep.yaml, "name: starry\n");
  EXPECT_EQ(sweep.spec_json, R"({"name":"starry"})");
  EXPECT_EQ(sweep.max_attempts, 2);
  EXPECT_EQ(sweep.created_ms, 1234);

  ASSERT_OK_AND_ASSIGN(std::vector<SweepRecord> sweeps, store_->ListSweeps());
  ASSERT_THAT(sweeps, SizeIs(1));
  EXPECT_EQ(sweeps[0].id, id);

  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(id));
  ASSERT_THAT(runs, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const RunRecord& run = runs[i];
    EXPECT_EQ(run.sweep_id, id);
    EXPECT_EQ(run.index, i);
    EXPECT_EQ(run.params_json, absl::StrCat(R"({"index":)", i, "}"));
    EXPECT_EQ(run.params_hash, absl::StrCat("hash-", i));
    EXPECT_EQ(run.state, RunState::kQueued);
    EXPECT_EQ(run.attempt, 0);
    EXPECT_EQ(run.agent, "");
    EXPECT_EQ(run.created_ms, 1234);
    EXPECT_EQ(run.started_ms, 0);
    EXPECT_EQ(run.finished_ms, 0);
    EXPECT_EQ(run.error, "");
    EXPECT_EQ(run.last_step, -1);
    EXPECT_EQ(run.final_snapshot, "");

    ASSERT_OK_AND_ASSIGN(RunRecord by_id, store_->GetRun(run.id));
    EXPECT_EQ(Describe(by_id), Describe(run));
    ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run.id));
    EXPECT_THAT(attempts, IsEmpty());
  }
}

TEST_P(StoreContractTest, RunsListInExpansionOrder) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("shuffled"), MakeRuns({2, 0, 1})));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(id));
  ASSERT_THAT(runs, SizeIs(3));
  EXPECT_EQ(runs[0].index, 0);
  EXPECT_EQ(runs[1].index, 1);
  EXPECT_EQ(runs[2].index, 2);
}

// What dashboards and /metrics show: runs per sweep and state, without
// listing them.
TEST_P(StoreContractTest, CountRunsBySweepAndState) {
  ASSERT_OK_AND_ASSIGN(std::vector<RunCount> none, store_->CountRuns());
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->CreateSweep(MakeSweep("first"), MakeRuns(3)));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->CreateSweep(MakeSweep("second"), MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> running, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(running.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> done, store_->ClaimNextRun("agent-b", 0, 100));
  ASSERT_TRUE(done.has_value());
  ASSERT_THAT(store_->FinishRun(done->run.id, 1, RunState::kSucceeded, "", 50), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<RunCount> counts, store_->CountRuns());
  std::vector<std::string> seen;
  for (const RunCount& count : counts) {
    seen.push_back(absl::StrCat(count.sweep_id, " ", count.sweep_name, " ", std::string(RunStateName(count.state)),
                                " ", count.runs));
  }
  EXPECT_THAT(seen, ::testing::ElementsAre(absl::StrCat(first, " first QUEUED 1"),
                                           absl::StrCat(first, " first RUNNING 1"),
                                           absl::StrCat(first, " first SUCCEEDED 1"),
                                           absl::StrCat(second, " second QUEUED 2")));
}

TEST_P(StoreContractTest, FindSweepByIdOrByMostRecentName) {
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->CreateSweep(MakeSweep("starry"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(int64_t other, store_->CreateSweep(MakeSweep("other"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->CreateSweep(MakeSweep("starry"), MakeRuns(1)));

  ASSERT_OK_AND_ASSIGN(SweepRecord by_id, store_->FindSweep(absl::StrCat(first)));
  EXPECT_EQ(by_id.id, first);
  ASSERT_OK_AND_ASSIGN(SweepRecord by_name, store_->FindSweep("starry"));
  EXPECT_EQ(by_name.id, second);
  ASSERT_OK_AND_ASSIGN(SweepRecord other_by_name, store_->FindSweep("other"));
  EXPECT_EQ(other_by_name.id, other);

  EXPECT_THAT(store_->FindSweep("missing"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
  EXPECT_THAT(store_->FindSweep("999"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
}

TEST_P(StoreContractTest, FindSweepFallsBackToANumericName) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("2024"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(SweepRecord sweep, store_->FindSweep("2024"));
  EXPECT_EQ(sweep.id, id);
}

TEST_P(StoreContractTest, UnknownIdsAreNotFound) {
  EXPECT_THAT(store_->GetSweep(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->ListRuns(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->GetRun(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->ListAttempts(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->GetMetrics(999, 0), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->ListSnapshots(999), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->RenewLease(999, 1, 100), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->AppendMetrics(999, 1, {Metric(0, 0)}), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
  EXPECT_THAT(store_->FinishRun(999, 1, RunState::kSucceeded, "", 100),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
}

TEST_P(StoreContractTest, NothingToClaimInAnEmptyStore) {
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_FALSE(lease.has_value());
}

TEST_P(StoreContractTest, ClaimsTheOldestQueuedRunFirst) {
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->CreateSweep(MakeSweep("first"), MakeRuns({1, 0})));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->CreateSweep(MakeSweep("second"), MakeRuns(1)));

  std::vector<std::pair<int64_t, int>> claimed;  // (sweep, index)
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 10 + i, 1010 + i));
    ASSERT_TRUE(lease.has_value());
    claimed.emplace_back(lease->run.sweep_id, lease->run.index);
  }
  EXPECT_THAT(claimed, ElementsAre(std::make_pair(first, 0), std::make_pair(first, 1), std::make_pair(second, 0)));

  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-a", 20, 1020));
  EXPECT_FALSE(none.has_value());
}

TEST_P(StoreContractTest, ClaimLeasesTheRunAndStartsAnAttempt) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("s"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 10, 1010));
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->attempt, 1);
  EXPECT_EQ(lease->run.sweep_id, id);
  EXPECT_EQ(lease->run.state, RunState::kRunning);
  EXPECT_EQ(lease->run.attempt, 1);
  EXPECT_EQ(lease->run.agent, "agent-a");
  EXPECT_EQ(lease->run.started_ms, 10);
  EXPECT_EQ(lease->run.lease_expires_ms, 1010);
  EXPECT_EQ(lease->run.last_step, -1);

  ASSERT_OK_AND_ASSIGN(RunRecord stored, store_->GetRun(lease->run.id));
  EXPECT_EQ(Describe(stored), Describe(lease->run));

  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(lease->run.id));
  ASSERT_THAT(attempts, SizeIs(1));
  EXPECT_EQ(attempts[0].run_id, lease->run.id);
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].agent, "agent-a");
  EXPECT_EQ(attempts[0].state, RunState::kRunning);
  EXPECT_EQ(attempts[0].started_ms, 10);
  EXPECT_EQ(attempts[0].finished_ms, 0);
}

TEST_P(StoreContractTest, ReclaimAfterExpiryStartsTheNextAttemptAfresh) {
  ASSERT_OK_AND_ASSIGN(int64_t sweep, store_->CreateSweep(MakeSweep("s", 3), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(first.has_value());
  const int64_t run = first->run.id;
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(0, 1)}), IsOk());
  ASSERT_THAT(store_->AddSnapshot({run, 1, 0, "s/run0/final.png", true}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(101));
  ASSERT_THAT(expired, SizeIs(1));

  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 200, 300));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->run.id, run);
  EXPECT_EQ(second->run.sweep_id, sweep);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_EQ(second->run.attempt, 2);
  EXPECT_EQ(second->run.agent, "agent-b");
  EXPECT_EQ(second->run.started_ms, 200);
  EXPECT_EQ(second->run.error, "");
  EXPECT_EQ(second->run.last_step, -1);
  EXPECT_EQ(second->run.total_loss, 0);
  EXPECT_EQ(second->run.final_snapshot, "");

  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(2));
  EXPECT_EQ(attempts[0].state, RunState::kLost);
  EXPECT_EQ(attempts[0].agent, "agent-a");
  EXPECT_EQ(attempts[1].state, RunState::kRunning);
  EXPECT_EQ(attempts[1].agent, "agent-b");

  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> current, store_->GetMetrics(run, 0));
  EXPECT_THAT(current, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> earlier, store_->GetMetrics(run, 1));
  EXPECT_EQ(Describe(earlier), Describe(std::vector<MetricRow>{Metric(0, 1)}));
}

TEST_P(StoreContractTest, StaleAttemptCannotWriteAndChangesNothing) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s", 3), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(first.has_value());
  const int64_t run = first->run.id;
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(0, 1)}), IsOk());
  ASSERT_THAT(store_->ExpireLeases(101), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 200, 300));
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->attempt, 2);
  ASSERT_THAT(store_->AppendMetrics(run, 2, {Metric(0, 10)}), IsOk());
  ASSERT_THAT(store_->AddSnapshot({run, 2, 0, "s/run0/a2/0.png", false}), IsOk());

  ASSERT_OK_AND_ASSIGN(RunRecord run_before, store_->GetRun(run));
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts_before, store_->ListAttempts(run));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics1_before, store_->GetMetrics(run, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics2_before, store_->GetMetrics(run, 2));
  ASSERT_OK_AND_ASSIGN(std::vector<SnapshotRecord> snapshots_before, store_->ListSnapshots(run));

  const std::string not_held = absl::StrCat("run ", run, " attempt 1 is no longer held: now attempt 2, RUNNING");
  EXPECT_THAT(store_->RenewLease(run, 1, 10'000), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  EXPECT_THAT(store_->AppendMetrics(run, 1, {Metric(1, 50), Metric(7, 70)}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  EXPECT_THAT(store_->AddSnapshot({run, 1, 7, "s/run0/stale.png", true}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  EXPECT_THAT(store_->FinishRun(run, 1, RunState::kSucceeded, "", 400),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));

  ASSERT_OK_AND_ASSIGN(RunRecord run_after, store_->GetRun(run));
  EXPECT_EQ(Describe(run_after), Describe(run_before));
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts_after, store_->ListAttempts(run));
  EXPECT_EQ(Describe(attempts_after), Describe(attempts_before));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics1_after, store_->GetMetrics(run, 1));
  EXPECT_EQ(Describe(metrics1_after), Describe(metrics1_before));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics2_after, store_->GetMetrics(run, 2));
  EXPECT_EQ(Describe(metrics2_after), Describe(metrics2_before));
  ASSERT_OK_AND_ASSIGN(std::vector<SnapshotRecord> snapshots_after, store_->ListSnapshots(run));
  EXPECT_EQ(Describe(snapshots_after), Describe(snapshots_before));
}

// A restarted coordinator extends the leases of runs still RUNNING, never
// shortens one, and leaves other runs alone.
TEST_P(StoreContractTest, ExtendRunningLeasesGivesRunningRunsTime) {
  ASSERT_OK_AND_ASSIGN(int64_t sweep, store_->CreateSweep(MakeSweep("s"), MakeRuns(3)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> short_lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> long_lease, store_->ClaimNextRun("agent-b", 0, 5000));
  ASSERT_TRUE(short_lease.has_value() && long_lease.has_value());

  ASSERT_OK_AND_ASSIGN(int extended, store_->ExtendRunningLeases(1000));
  EXPECT_EQ(extended, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(999));
  EXPECT_THAT(expired, IsEmpty());  // 100 became 1000; 5000 stayed
  ASSERT_OK_AND_ASSIGN(expired, store_->ExpireLeases(1001));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id, short_lease->run.id);
  ASSERT_OK_AND_ASSIGN(RunRecord queued, store_->GetRun(short_lease->run.id));
  EXPECT_EQ(queued.state, RunState::kQueued);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(sweep));
  EXPECT_EQ(runs.size(), 3u);
}

// A hand-back re-queues the run at once, keeps the attempt's losses under a
// CANCELLED attempt, is idempotent, and does not count against max_attempts
// (which counts LOST attempts only).
TEST_P(StoreContractTest, ReleasedRunIsQueuedAgainAndDoesNotUseAnAttempt) {
  NewSweep sweep = MakeSweep("s");
  sweep.max_attempts = 2;
  ASSERT_OK_AND_ASSIGN(int64_t sweep_id, store_->CreateSweep(sweep, MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(first.has_value());
  const int64_t run = first->run.id;
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(0, 10), Metric(1, 9)}), IsOk());
  ASSERT_THAT(store_->ReleaseRun(run, 1, "handed back: draining", 50), IsOk());
  ASSERT_THAT(store_->ReleaseRun(run, 1, "handed back: draining", 51), IsOk());  // a retried call
  ASSERT_OK_AND_ASSIGN(RunRecord queued, store_->GetRun(run));
  EXPECT_EQ(queued.state, RunState::kQueued);
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].state, RunState::kCancelled);
  EXPECT_EQ(attempts[0].error, "handed back: draining");
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> kept, store_->GetMetrics(run, 1));
  EXPECT_EQ(kept.size(), 2u);

  // Attempt 2 is lost: with max_attempts 2 and only one LOST attempt, the
  // run is queued again rather than LOST for good.
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 60, 200));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempt, 2);
  EXPECT_THAT(store_->ReleaseRun(run, 1, "late", 70), IsOk());  // already handed back
  ASSERT_THAT(store_->ExpireLeases(201), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord after_loss, store_->GetRun(run));
  EXPECT_EQ(after_loss.state, RunState::kQueued);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> third, store_->ClaimNextRun("agent-c", 300, 400));
  ASSERT_TRUE(third.has_value());
  ASSERT_THAT(store_->ExpireLeases(401), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord lost, store_->GetRun(run));
  EXPECT_EQ(lost.state, RunState::kLost);  // the second LOST attempt used up max_attempts
  EXPECT_THAT(store_->ReleaseRun(run, 3, "too late", 500),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no longer held")));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(sweep_id));
  EXPECT_EQ(runs.size(), 1u);
}

// Pause keeps queued runs from being claimed; cancel ends queued and running
// runs (a running attempt too, whose holder is then refused); retry queues
// failed and lost runs again. Each is idempotent.
TEST_P(StoreContractTest, SweepControlPausesCancelsAndRequeues) {
  ASSERT_OK_AND_ASSIGN(int64_t paused, store_->CreateSweep(MakeSweep("paused"), MakeRuns(2)));
  ASSERT_THAT(store_->SetSweepPaused(paused, true), IsOk());
  ASSERT_THAT(store_->SetSweepPaused(paused, true), IsOk());
  ASSERT_OK_AND_ASSIGN(SweepRecord sweep, store_->GetSweep(paused));
  EXPECT_TRUE(sweep.paused);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_FALSE(none.has_value());
  ASSERT_THAT(store_->SetSweepPaused(paused, false), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> running, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(running.has_value());
  ASSERT_THAT(store_->AppendMetrics(running->run.id, 1, {Metric(0, 5)}), IsOk());

  ASSERT_OK_AND_ASSIGN(int cancelled, store_->CancelSweep(paused, "sweep cancelled", 50));
  EXPECT_EQ(cancelled, 2);
  ASSERT_OK_AND_ASSIGN(cancelled, store_->CancelSweep(paused, "sweep cancelled", 60));
  EXPECT_EQ(cancelled, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(paused));
  for (const RunRecord& run : runs) EXPECT_EQ(run.state, RunState::kCancelled);
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(running->run.id));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].state, RunState::kCancelled);
  EXPECT_THAT(store_->RenewLease(running->run.id, 1, 200), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CANCELLED")));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> kept, store_->GetMetrics(running->run.id, 1));
  EXPECT_EQ(kept.size(), 1u);

  ASSERT_OK_AND_ASSIGN(int64_t failing, store_->CreateSweep(MakeSweep("failing"), MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 100, 200));
  ASSERT_TRUE(first.has_value());
  ASSERT_THAT(store_->FinishRun(first->run.id, 1, RunState::kFailed, "bad image", 150), IsOk());
  ASSERT_OK_AND_ASSIGN(int requeued, store_->RequeueRuns(failing, {RunState::kFailed, RunState::kLost}));
  EXPECT_EQ(requeued, 1);
  ASSERT_OK_AND_ASSIGN(requeued, store_->RequeueRuns(failing, {RunState::kFailed, RunState::kLost}));
  EXPECT_EQ(requeued, 0);
  ASSERT_OK_AND_ASSIGN(RunRecord again, store_->GetRun(first->run.id));
  EXPECT_EQ(again.state, RunState::kQueued);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 300, 400));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->run.id, first->run.id);
  EXPECT_EQ(second->attempt, 2);
  EXPECT_THAT(store_->RequeueRuns(failing, {RunState::kSucceeded}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SUCCEEDED")));
  EXPECT_THAT(store_->CancelSweep(999, "x", 0), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
}

TEST_P(StoreContractTest, FinishedRunTakesNoMoreWrites) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;
  ASSERT_THAT(store_->FinishRun(run, 1, RunState::kSucceeded, "", 50), IsOk());

  const std::string not_held = absl::StrCat("run ", run, " attempt 1 is no longer held: now attempt 1, SUCCEEDED");
  EXPECT_THAT(store_->RenewLease(run, 1, 200), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  EXPECT_THAT(store_->AppendMetrics(run, 1, {Metric(0, 0)}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  EXPECT_THAT(store_->AddSnapshot({run, 1, 0, "late.png", false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(not_held)));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics, store_->GetMetrics(run, 0));
  EXPECT_THAT(metrics, IsEmpty());
}

TEST_P(StoreContractTest, RepeatedMetricsAreStoredOnceAndTheHighestStepIsTheLatest) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;

  const std::vector<MetricRow> rows = {Metric(0, 10), Metric(1, 20), Metric(2, 30)};
  ASSERT_THAT(store_->AppendMetrics(run, 1, rows), IsOk());
  ASSERT_THAT(store_->AppendMetrics(run, 1, rows), IsOk());  // a retried report
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> stored, store_->GetMetrics(run, 1));
  EXPECT_EQ(Describe(stored), Describe(rows));

  ASSERT_OK_AND_ASSIGN(RunRecord after_first, store_->GetRun(run));
  EXPECT_EQ(after_first.last_step, 2);
  EXPECT_EQ(after_first.content_loss, 31);
  EXPECT_EQ(after_first.style_loss, 32);
  EXPECT_EQ(after_first.tv_loss, 33);
  EXPECT_EQ(after_first.total_loss, 36);

  // A stored step keeps its first values, and an older step does not move
  // the latest losses back.
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(1, 99)}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> unchanged, store_->GetMetrics(run, 1));
  EXPECT_EQ(Describe(unchanged), Describe(rows));
  ASSERT_OK_AND_ASSIGN(RunRecord after_old, store_->GetRun(run));
  EXPECT_EQ(Describe(after_old), Describe(after_first));

  // Out of order within one batch: the highest step wins, not the last row.
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(4, 40), Metric(3, 35)}), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord after_batch, store_->GetRun(run));
  EXPECT_EQ(after_batch.last_step, 4);
  EXPECT_EQ(after_batch.total_loss, 46);

  ASSERT_THAT(store_->AppendMetrics(run, 1, {}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> current, store_->GetMetrics(run, 0));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> first_attempt, store_->GetMetrics(run, 1));
  EXPECT_THAT(current, SizeIs(5));
  EXPECT_EQ(Describe(current), Describe(first_attempt));
  EXPECT_EQ(current[3].step, 3);
}

Evaluation Eval(double base) {
  Evaluation e;
  e.style = base;
  e.content = base + 0.5;
  e.tv = 0.01;
  e.style_norm = base / 10;
  e.content_norm = base / 20;
  e.tv_norm = 0.9;
  e.ssim = 0.75;
  e.color = 0.125;
  return e;
}

MetricRow Evaluated(int step, double base) {
  MetricRow row = Metric(step, base);
  row.eval = Eval(base);
  return row;
}

TEST_P(StoreContractTest, EvaluationsAreKeptPerStepAndTheLatestIsTheRuns) {
  ASSERT_OK_AND_ASSIGN(int64_t sweep, store_->CreateSweep(MakeSweep("s"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;
  EXPECT_FALSE(lease->run.has_eval());

  ASSERT_THAT(store_->AppendMetrics(run, 1, {Evaluated(0, 1), Metric(1, 2), Evaluated(2, 3), Metric(3, 4)}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> stored, store_->GetMetrics(run, 1));
  ASSERT_THAT(stored, SizeIs(4));
  ASSERT_TRUE(stored[0].eval.has_value());
  EXPECT_EQ(*stored[0].eval, Eval(1));
  EXPECT_FALSE(stored[1].eval.has_value());
  ASSERT_TRUE(stored[2].eval.has_value());
  EXPECT_EQ(*stored[2].eval, Eval(3));
  EXPECT_FALSE(stored[3].eval.has_value());

  // The run shows the latest evaluated step, not the latest step.
  ASSERT_OK_AND_ASSIGN(RunRecord after, store_->GetRun(run));
  EXPECT_EQ(after.last_step, 3);
  EXPECT_EQ(after.eval_step, 2);
  EXPECT_EQ(after.eval, Eval(3));

  // A retry with other values changes nothing; an older step does not move
  // the run's evaluation back.
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Evaluated(2, 9), Evaluated(0, 9)}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> again, store_->GetMetrics(run, 1));
  EXPECT_EQ(*again[2].eval, Eval(3));
  ASSERT_OK_AND_ASSIGN(RunRecord unchanged, store_->GetRun(run));
  EXPECT_EQ(unchanged.eval, Eval(3));

  // An evaluation out of its ranges is refused with its batch, and nothing
  // of the batch is stored.
  MetricRow bad = Evaluated(4, 5);
  bad.eval->ssim = 2;
  EXPECT_THAT(store_->AppendMetrics(run, 1, {Evaluated(5, 6), bad}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eval/ssim")));
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> after_bad, store_->GetMetrics(run, 1));
  EXPECT_THAT(after_bad, SizeIs(4));

  // Early termination sees the evaluation at a rung, and a run without one
  // there has none.
  ASSERT_OK_AND_ASSIGN(std::vector<RunMetricAtStep> at2, store_->MetricsAtStep(sweep, 2));
  ASSERT_THAT(at2, SizeIs(1));
  ASSERT_TRUE(at2[0].row.eval.has_value());
  EXPECT_EQ(*at2[0].row.eval, Eval(3));
  ASSERT_OK_AND_ASSIGN(std::vector<RunMetricAtStep> at3, store_->MetricsAtStep(sweep, 3));
  ASSERT_THAT(at3, SizeIs(1));
  EXPECT_FALSE(at3[0].row.eval.has_value());

  // A new attempt starts without one.
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(1000));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 1000, 2000));
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->run.has_eval());
  ASSERT_OK_AND_ASSIGN(RunRecord fresh, store_->GetRun(run));
  EXPECT_EQ(fresh.eval_step, -1);
}

TEST_P(StoreContractTest, MetricsBatchWithANegativeStepIsRefusedWhole) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;

  EXPECT_FALSE(store_->AppendMetrics(run, 1, {Metric(0, 1), Metric(-1, 2)}).ok());
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> metrics, store_->GetMetrics(run, 1));
  EXPECT_THAT(metrics, IsEmpty());
  ASSERT_OK_AND_ASSIGN(RunRecord after, store_->GetRun(run));
  EXPECT_EQ(Describe(after), Describe(lease->run));
}

TEST_P(StoreContractTest, SnapshotsAreIdempotentAndTheFinalOneIsTheRuns) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;

  const SnapshotRecord intermediate{run, 1, 100, "s/run0/100.png", false};
  ASSERT_THAT(store_->AddSnapshot(intermediate), IsOk());
  ASSERT_THAT(store_->AddSnapshot(intermediate), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord before_final, store_->GetRun(run));
  EXPECT_EQ(before_final.final_snapshot, "");

  const SnapshotRecord final{run, 1, 200, "s/run0/final.png", true};
  ASSERT_THAT(store_->AddSnapshot(final), IsOk());
  ASSERT_THAT(store_->AddSnapshot(final), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord after_final, store_->GetRun(run));
  EXPECT_EQ(after_final.final_snapshot, "s/run0/final.png");

  ASSERT_OK_AND_ASSIGN(std::vector<SnapshotRecord> snapshots, store_->ListSnapshots(run));
  EXPECT_EQ(Describe(snapshots), Describe(std::vector<SnapshotRecord>{intermediate, final}));
}

TEST_P(StoreContractTest, FinishingTwiceTheSameWayIsOkButNotDifferently) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 10, 1000));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;

  ASSERT_THAT(store_->FinishRun(run, 1, RunState::kSucceeded, "", 500), IsOk());
  ASSERT_THAT(store_->FinishRun(run, 1, RunState::kSucceeded, "", 600), IsOk());  // a retried report
  EXPECT_THAT(store_->FinishRun(run, 1, RunState::kFailed, "boom", 700),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already finished as SUCCEEDED")));

  ASSERT_OK_AND_ASSIGN(RunRecord finished, store_->GetRun(run));
  EXPECT_EQ(finished.state, RunState::kSucceeded);
  EXPECT_EQ(finished.finished_ms, 500);
  EXPECT_EQ(finished.error, "");
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(1));
  EXPECT_EQ(attempts[0].state, RunState::kSucceeded);
  EXPECT_EQ(attempts[0].finished_ms, 500);

  // A finished run is not handed out again, and leases no longer apply to it.
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-b", 800, 900));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(100'000));
  EXPECT_THAT(expired, IsEmpty());
}

TEST_P(StoreContractTest, FailedRunKeepsItsError) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 10, 1000));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;
  ASSERT_THAT(store_->FinishRun(run, 1, RunState::kFailed, "weights file is truncated", 20), IsOk());

  ASSERT_OK_AND_ASSIGN(RunRecord failed, store_->GetRun(run));
  EXPECT_EQ(failed.state, RunState::kFailed);
  EXPECT_EQ(failed.error, "weights file is truncated");
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(1));
  EXPECT_EQ(attempts[0].state, RunState::kFailed);
  EXPECT_EQ(attempts[0].error, "weights file is truncated");
}

TEST_P(StoreContractTest, FinishOnlyTakesAFinalState) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 10, 1000));
  ASSERT_TRUE(lease.has_value());
  const int64_t run = lease->run.id;
  for (RunState state : {RunState::kQueued, RunState::kRunning, RunState::kLost}) {
    EXPECT_THAT(store_->FinishRun(run, 1, state, "", 20),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(std::string(RunStateName(state)))));
  }
  ASSERT_OK_AND_ASSIGN(RunRecord still, store_->GetRun(run));
  EXPECT_EQ(Describe(still), Describe(lease->run));
}

TEST_P(StoreContractTest, ExpiredLeaseRequeuesUntilMaxAttemptsThenIsLost) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s", /*max_attempts=*/2), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 0, 1000));
  ASSERT_TRUE(first.has_value());
  const int64_t run = first->run.id;

  // Expiry is strictly before now; a renewal moves it on and never back.
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> at_expiry, store_->ExpireLeases(1000));
  EXPECT_THAT(at_expiry, IsEmpty());
  ASSERT_THAT(store_->RenewLease(run, 1, 2000), IsOk());
  ASSERT_THAT(store_->RenewLease(run, 1, 1200), IsOk());  // a late, retried heartbeat
  ASSERT_OK_AND_ASSIGN(RunRecord renewed, store_->GetRun(run));
  EXPECT_EQ(renewed.lease_expires_ms, 2000);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> renewed_expired, store_->ExpireLeases(1500));
  EXPECT_THAT(renewed_expired, IsEmpty());

  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> requeued, store_->ExpireLeases(2001));
  ASSERT_THAT(requeued, SizeIs(1));
  EXPECT_EQ(requeued[0].id, run);
  EXPECT_EQ(requeued[0].state, RunState::kQueued);
  EXPECT_EQ(requeued[0].attempt, 1);
  EXPECT_EQ(requeued[0].agent, "");
  EXPECT_THAT(requeued[0].error, HasSubstr("agent-a"));
  ASSERT_OK_AND_ASSIGN(RunRecord stored_requeued, store_->GetRun(run));
  EXPECT_EQ(Describe(stored_requeued), Describe(requeued[0]));

  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-b", 3000, 4000));
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->attempt, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> lost, store_->ExpireLeases(4001));
  ASSERT_THAT(lost, SizeIs(1));
  EXPECT_EQ(lost[0].state, RunState::kLost);
  EXPECT_EQ(lost[0].attempt, 2);
  EXPECT_EQ(lost[0].finished_ms, 4001);
  EXPECT_EQ(lost[0].error, "lease expired; agent agent-b stopped heartbeating");

  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(2));
  EXPECT_EQ(attempts[0].state, RunState::kLost);
  EXPECT_EQ(attempts[0].agent, "agent-a");
  EXPECT_EQ(attempts[0].finished_ms, 2001);
  EXPECT_EQ(attempts[0].error, "lease expired; agent agent-a stopped heartbeating");
  EXPECT_EQ(attempts[1].state, RunState::kLost);
  EXPECT_EQ(attempts[1].agent, "agent-b");
  EXPECT_EQ(attempts[1].finished_ms, 4001);

  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-c", 5000, 6000));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> again, store_->ExpireLeases(100'000));
  EXPECT_THAT(again, IsEmpty());
}

TEST_P(StoreContractTest, ExpiryLeavesLiveLeasesAlone) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(2)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> short_lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> long_lease, store_->ClaimNextRun("agent-b", 0, 500));
  ASSERT_TRUE(short_lease.has_value() && long_lease.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(200));
  ASSERT_THAT(expired, SizeIs(1));
  EXPECT_EQ(expired[0].id, short_lease->run.id);
  ASSERT_OK_AND_ASSIGN(RunRecord live, store_->GetRun(long_lease->run.id));
  EXPECT_EQ(Describe(live), Describe(long_lease->run));
}

AgentRecord MakeAgent(const std::string& name, const std::string& host, const std::string& device,
                      const std::string& description, int64_t now_ms) {
  AgentRecord agent;
  agent.name = name;
  agent.host = host;
  agent.device = device;
  agent.device_name = device == "cpu" ? "Some CPU" : "Some GPU";
  agent.memory_bytes = 1 << 30;
  agent.description = description;
  agent.registered_ms = now_ms;
  agent.last_seen_ms = now_ms;
  return agent;
}

TEST_P(StoreContractTest, ALiveAgentsNameIsKeptFromAnotherCredential) {
  AgentRecord first = MakeAgent("gpu-1", "host-1", "cuda:0", "", 1000);
  first.credential = "token:host-1";
  ASSERT_THAT(store_->UpsertAgent(first, 0), IsOk());
  // Another credential, while the holder was seen at or after live_since.
  AgentRecord impostor = MakeAgent("gpu-1", "evil", "cuda:0", "", 1500);
  impostor.credential = "token:evil";
  EXPECT_THAT(store_->UpsertAgent(impostor, 1000), StatusIs(absl::StatusCode::kAlreadyExists, _));
  ASSERT_OK_AND_ASSIGN(AgentRecord kept, store_->GetAgent("gpu-1"));
  EXPECT_EQ(kept.host, "host-1");
  EXPECT_EQ(kept.credential, "token:host-1");
  // The same credential registers again (a restart).
  AgentRecord restarted = MakeAgent("gpu-1", "host-1", "cuda:1", "", 1600);
  restarted.credential = "token:host-1";
  ASSERT_THAT(store_->UpsertAgent(restarted, 1100), IsOk());
  // Once the holder is lost (last seen before live_since), the name passes.
  impostor.last_seen_ms = impostor.registered_ms = 9000;
  ASSERT_THAT(store_->UpsertAgent(impostor, 1601), IsOk());
  ASSERT_OK_AND_ASSIGN(AgentRecord taken, store_->GetAgent("gpu-1"));
  EXPECT_EQ(taken.credential, "token:evil");
}

TEST_P(StoreContractTest, CredentialsAreCreatedListedAndRevokedNeverDeleted) {
  ASSERT_OK_AND_ASSIGN(bool none, store_->HasCredentials());
  EXPECT_FALSE(none);
  CredentialRecord alice{0, "alice", "user", "", "aa", "hash-a", 10, 0, 0};
  CredentialRecord host{0, "host-1", "agent", "gpu-*", "bb", "hash-b", 20, 0, 0};
  ASSERT_OK_AND_ASSIGN(int64_t alice_id, store_->CreateCredential(alice));
  ASSERT_OK_AND_ASSIGN(int64_t host_id, store_->CreateCredential(host));
  EXPECT_NE(alice_id, host_id);
  EXPECT_THAT(store_->CreateCredential(alice), StatusIs(absl::StatusCode::kAlreadyExists, _));
  CredentialRecord bad = alice;
  bad.name = "mallory";
  bad.role = "admin";
  EXPECT_THAT(store_->CreateCredential(bad), Not(IsOk()));
  ASSERT_OK_AND_ASSIGN(CredentialRecord read, store_->GetCredential(host_id));
  EXPECT_EQ(read.name, "host-1");
  EXPECT_EQ(read.agent_names, "gpu-*");
  EXPECT_EQ(read.secret_hash, "hash-b");
  EXPECT_THAT(store_->GetCredential(999), StatusIs(absl::StatusCode::kNotFound, _));

  ASSERT_THAT(store_->NoteCredentialUse(alice_id, 50), IsOk());
  ASSERT_THAT(store_->NoteCredentialUse(alice_id, 40), IsOk());  // never moves back
  ASSERT_OK_AND_ASSIGN(CredentialRecord used, store_->GetCredential(alice_id));
  EXPECT_EQ(used.last_used_ms, 50);

  ASSERT_OK_AND_ASSIGN(CredentialRecord revoked, store_->RevokeCredential("alice", 60));
  EXPECT_EQ(revoked.revoked_ms, 60);
  ASSERT_OK_AND_ASSIGN(CredentialRecord again, store_->RevokeCredential(absl::StrCat(alice_id), 70));
  EXPECT_EQ(again.revoked_ms, 60);
  EXPECT_THAT(store_->RevokeCredential("nobody", 70), StatusIs(absl::StatusCode::kNotFound, _));
  ASSERT_OK_AND_ASSIGN(std::vector<CredentialRecord> all, store_->ListCredentials());
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].name, "alice");
  EXPECT_EQ(all[0].revoked_ms, 60);
  EXPECT_EQ(all[1].revoked_ms, 0);
  ASSERT_OK_AND_ASSIGN(bool some, store_->HasCredentials());
  EXPECT_TRUE(some);
}

TEST_P(StoreContractTest, AgentsAreUpsertedAndListedByName) {
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("gpu-box", "host-1", "cuda:0", "H100", 10), 0), IsOk());
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("cpu-box", "host-2", "cpu", "2 cores", 20), 0), IsOk());
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("gpu-box", "host-3", "cuda:1", "restarted", 30), 0), IsOk());

  ASSERT_OK_AND_ASSIGN(std::vector<AgentRecord> agents, store_->ListAgents());
  ASSERT_THAT(agents, SizeIs(2));
  EXPECT_EQ(agents[0].name, "cpu-box");
  EXPECT_EQ(agents[0].host, "host-2");
  EXPECT_EQ(agents[0].device_name, "Some CPU");
  EXPECT_EQ(agents[0].memory_bytes, 1 << 30);
  EXPECT_EQ(agents[0].slots, 1);
  EXPECT_EQ(agents[0].registered_ms, 20);
  EXPECT_EQ(agents[1].name, "gpu-box");
  EXPECT_EQ(agents[1].host, "host-3");
  EXPECT_EQ(agents[1].device, "cuda:1");
  EXPECT_EQ(agents[1].description, "restarted");
  EXPECT_EQ(agents[1].registered_ms, 30);
  EXPECT_EQ(agents[1].last_seen_ms, 30);
  EXPECT_THAT(store_->GetAgent("ghost"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("ghost")));
}

TEST_P(StoreContractTest, AgentActivityKeepsTheLatestReport) {
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("a", "h", "cpu", "", 10), 0), IsOk());
  ASSERT_THAT(store_->RecordAgentActivity("a", 99, AgentActivity{7, 2, 40, 100, 3.5, true}), IsOk());
  // Handled late (a retried heartbeat): neither the time nor the activity go back.
  ASSERT_THAT(store_->RecordAgentActivity("a", 80, AgentActivity{7, 2, 10, 100, 1.0, false}), IsOk());
  EXPECT_THAT(store_->RecordAgentActivity("ghost", 100, AgentActivity{}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("ghost")));

  ASSERT_OK_AND_ASSIGN(AgentRecord agent, store_->GetAgent("a"));
  EXPECT_EQ(agent.last_seen_ms, 99);
  EXPECT_EQ(agent.run_id, 7);
  EXPECT_EQ(agent.attempt, 2);
  EXPECT_EQ(agent.step, 40);
  EXPECT_EQ(agent.steps, 100);
  EXPECT_DOUBLE_EQ(agent.steps_per_second, 3.5);
  EXPECT_TRUE(agent.draining);
  EXPECT_EQ(StateOf(agent, 100, 1000), AgentState::kDraining);
  EXPECT_EQ(StateOf(agent, 99 + 1001, 1000), AgentState::kLost);

  // Registering again (a restart) resets the activity.
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("a", "h", "cpu", "", 200), 0), IsOk());
  ASSERT_OK_AND_ASSIGN(agent, store_->GetAgent("a"));
  EXPECT_EQ(agent.run_id, 0);
  EXPECT_FALSE(agent.draining);
  EXPECT_EQ(StateOf(agent, 200, 1000), AgentState::kIdle);
}

TEST_P(StoreContractTest, ConsecutiveFailuresQuarantineAnAgentUntilReleased) {
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("a", "h", "cpu", "", 10), 0), IsOk());
  ASSERT_OK_AND_ASSIGN(AgentRecord agent, store_->RecordAgentOutcome("a", true, "boom 1", 3));
  ASSERT_OK_AND_ASSIGN(agent, store_->RecordAgentOutcome("a", true, "boom 2", 3));
  ASSERT_OK_AND_ASSIGN(agent, store_->RecordAgentOutcome("a", false, "", 3));  // a success resets the count
  EXPECT_EQ(agent.consecutive_failures, 0);
  EXPECT_TRUE(agent.quarantine_reason.empty());
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(agent, store_->RecordAgentOutcome("a", true, absl::StrCat("cuda error ", i), 3));
  }
  EXPECT_EQ(agent.consecutive_failures, 3);
  EXPECT_EQ(agent.failures, 5);
  EXPECT_EQ(agent.runs_finished, 6);
  EXPECT_THAT(agent.quarantine_reason, AllOf(HasSubstr("3 runs in a row failed"), HasSubstr("cuda error 2")));
  EXPECT_EQ(StateOf(agent, 10, 1000), AgentState::kQuarantined);

  // A restart does not lift it; a release does, once.
  ASSERT_THAT(store_->UpsertAgent(MakeAgent("a", "h", "cpu", "", 20), 0), IsOk());
  ASSERT_OK_AND_ASSIGN(agent, store_->GetAgent("a"));
  EXPECT_FALSE(agent.quarantine_reason.empty());
  ASSERT_OK_AND_ASSIGN(bool was_quarantined, store_->ReleaseAgent("a"));
  EXPECT_TRUE(was_quarantined);
  ASSERT_OK_AND_ASSIGN(was_quarantined, store_->ReleaseAgent("a"));
  EXPECT_FALSE(was_quarantined);
  ASSERT_OK_AND_ASSIGN(agent, store_->GetAgent("a"));
  EXPECT_TRUE(agent.quarantine_reason.empty());
  EXPECT_EQ(agent.consecutive_failures, 0);
  EXPECT_EQ(agent.failures, 5);
  EXPECT_THAT(store_->ReleaseAgent("ghost"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("ghost")));

  // quarantine_after 0: never.
  for (int i = 0; i < 10; ++i) ASSERT_THAT(store_->RecordAgentOutcome("a", true, "x", 0), IsOk());
  ASSERT_OK_AND_ASSIGN(agent, store_->GetAgent("a"));
  EXPECT_TRUE(agent.quarantine_reason.empty());
}

TEST_P(StoreContractTest, RunThatRanOutOfMemoryGoesToAnotherAgent) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s", /*max_attempts=*/1), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("small-gpu", 0, 100));
  ASSERT_TRUE(first.has_value());
  const int64_t run = first->run.id;
  ASSERT_THAT(store_->AppendMetrics(run, 1, {MetricRow{0, 1, 2, 3, 6, 0.1}}), IsOk());
  ASSERT_THAT(store_->RetryElsewhere(run, 1, "out of memory on cuda:0", "log line 1\nlog line 2\n", 50), IsOk());
  ASSERT_THAT(store_->RetryElsewhere(run, 1, "out of memory on cuda:0", "", 60), IsOk());  // a retried report

  ASSERT_OK_AND_ASSIGN(RunRecord queued, store_->GetRun(run));
  EXPECT_EQ(queued.state, RunState::kQueued);
  EXPECT_THAT(queued.error, HasSubstr("out of memory"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> avoided, store_->AgentsAvoidedBy(run));
  EXPECT_THAT(avoided, ElementsAre("small-gpu"));
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(1));
  EXPECT_EQ(attempts[0].state, RunState::kFailed);
  EXPECT_EQ(attempts[0].log_tail, "log line 1\nlog line 2\n");
  ASSERT_OK_AND_ASSIGN(std::vector<MetricRow> kept, store_->GetMetrics(run, 1));
  EXPECT_THAT(kept, SizeIs(1));

  // Never to the same agent again; another takes it, and the failed attempt
  // does not count against max_attempts (1).
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> same, store_->ClaimNextRun("small-gpu", 70, 170));
  EXPECT_FALSE(same.has_value());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> other, store_->ClaimNextRun("big-gpu", 80, 180));
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->attempt, 2);
  EXPECT_TRUE(other->run.log_tail.empty());
  ASSERT_THAT(store_->FinishRun(run, 2, RunState::kFailed, "nan loss", 90, "tail of big-gpu\n"), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord failed, store_->GetRun(run));
  EXPECT_EQ(failed.state, RunState::kFailed);
  EXPECT_EQ(failed.log_tail, "tail of big-gpu\n");
  ASSERT_OK_AND_ASSIGN(attempts, store_->ListAttempts(run));
  ASSERT_THAT(attempts, SizeIs(2));
  EXPECT_EQ(attempts[1].log_tail, "tail of big-gpu\n");
  // The old holder's report is stale now.
  EXPECT_THAT(store_->RetryElsewhere(run, 2, "x", "", 95), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no longer")));
}

TEST_P(StoreContractTest, CreateSweepThatFailsHalfWayStoresNothing) {
  EXPECT_FALSE(store_->CreateSweep(MakeSweep("dup"), MakeRuns({0, 1, 1})).ok());

  ASSERT_OK_AND_ASSIGN(std::vector<SweepRecord> sweeps, store_->ListSweeps());
  EXPECT_THAT(sweeps, IsEmpty());
  EXPECT_THAT(store_->FindSweep("dup"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("dup")));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_FALSE(none.has_value());

  // The store is still usable, and the corrected sweep goes in whole.
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("dup"), MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(id));
  EXPECT_THAT(runs, SizeIs(2));
}

TEST_P(StoreContractTest, ConcurrentClaimsHandOutEachRunOnce) {
  constexpr int kRuns = 40;
  constexpr int kThreads = 4;
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(kRuns)), IsOk());

  std::vector<std::vector<int64_t>> claimed(kThreads);
  std::vector<absl::Status> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (true) {
        absl::StatusOr<std::optional<Lease>> lease = store_->ClaimNextRun(absl::StrCat("agent-", t), 0, 100);
        if (!lease.ok()) {
          errors[t] = lease.status();
          return;
        }
        if (!lease->has_value()) return;
        claimed[t].push_back((*lease)->run.id);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::set<int64_t> distinct;
  size_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(errors[t], IsOk());
    total += claimed[t].size();
    distinct.insert(claimed[t].begin(), claimed[t].end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kRuns));
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kRuns));
}

}  // namespace

// ------------------------------------------------------------ search methods

TEST_P(StoreContractTest, SearchFieldsReadBack) {
  NewSweep sweep = MakeSweep("random");
  sweep.method = "random";
  sweep.content_hash = "abc";
  sweep.search_seed = (uint64_t{1} << 62) + 5;
  sweep.run_cap = 10;
  sweep.max_concurrent = 2;
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(sweep, MakeRuns(3)));
  ASSERT_OK_AND_ASSIGN(SweepRecord stored, store_->GetSweep(id));
  EXPECT_EQ(stored.content_hash, "abc");
  EXPECT_EQ(stored.search_seed, (uint64_t{1} << 62) + 5);
  EXPECT_EQ(stored.draws, 3);  // the runs created with it
  EXPECT_EQ(stored.run_cap, 10);
  EXPECT_EQ(stored.max_concurrent, 2);

  ASSERT_OK_AND_ASSIGN(std::optional<SweepRecord> found, store_->FindSweepByContentHash("abc"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, id);
  ASSERT_OK_AND_ASSIGN(std::optional<SweepRecord> missing, store_->FindSweepByContentHash("def"));
  EXPECT_FALSE(missing.has_value());
}

TEST_P(StoreContractTest, AddRunTurnsEachDrawIntoExactlyOneRunUpToTheCap) {
  NewSweep sweep = MakeSweep("bayes");
  sweep.method = "bayes";
  sweep.run_cap = 2;
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(sweep, {}));
  NewRun run{0, R"({"a":1})", "h1", "[0.5]"};
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->AddRun(id, 0, run, 50));
  // A second proposal made from the same draw count lost the race.
  EXPECT_THAT(store_->AddRun(id, 0, run, 50), StatusIs(absl::StatusCode::kAborted, HasSubstr("draws")));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->AddRun(id, 1, run, 60));
  EXPECT_THAT(store_->AddRun(id, 2, run, 70), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("run_cap")));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> runs, store_->ListRuns(id));
  ASSERT_THAT(runs, SizeIs(2));
  EXPECT_EQ(runs[0].id, first);
  EXPECT_EQ(runs[0].index, 0);
  EXPECT_EQ(runs[0].point_json, "[0.5]");
  EXPECT_EQ(runs[0].state, RunState::kQueued);
  EXPECT_EQ(runs[1].id, second);
  EXPECT_EQ(runs[1].index, 1);
  EXPECT_EQ(runs[1].created_ms, 60);
  ASSERT_OK_AND_ASSIGN(SweepRecord stored, store_->GetSweep(id));
  EXPECT_EQ(stored.draws, 2);
  EXPECT_THAT(store_->AddRun(999, 0, run, 1), StatusIs(absl::StatusCode::kNotFound, HasSubstr("999")));
}

TEST_P(StoreContractTest, ClaimHonoursMaxConcurrentPerSweep) {
  NewSweep limited = MakeSweep("limited");
  limited.max_concurrent = 1;
  ASSERT_OK_AND_ASSIGN(int64_t a, store_->CreateSweep(limited, MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(int64_t b, store_->CreateSweep(MakeSweep("free"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l1, store_->ClaimNextRun("x", 10, 100));
  ASSERT_TRUE(l1.has_value());
  EXPECT_EQ(l1->run.sweep_id, a);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l2, store_->ClaimNextRun("y", 10, 100));
  ASSERT_TRUE(l2.has_value());
  EXPECT_EQ(l2->run.sweep_id, b);  // the limited sweep's second run waits
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l3, store_->ClaimNextRun("z", 10, 100));
  EXPECT_FALSE(l3.has_value());
  ASSERT_THAT(store_->FinishRun(l1->run.id, l1->attempt, RunState::kSucceeded, "", 20), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l4, store_->ClaimNextRun("z", 30, 100));
  ASSERT_TRUE(l4.has_value());
  EXPECT_EQ(l4->run.sweep_id, a);
}

TEST_P(StoreContractTest, PruneRequestsAndMetricsAtAStep) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("et", 3), MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l1, store_->ClaimNextRun("x", 10, 100));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> l2, store_->ClaimNextRun("y", 10, 100));
  ASSERT_THAT(store_->AppendMetrics(l1->run.id, 1, {Metric(0, 1), Metric(3, 10)}), IsOk());
  ASSERT_THAT(store_->AppendMetrics(l2->run.id, 1, {Metric(0, 2), Metric(3, 20)}), IsOk());
  ASSERT_OK_AND_ASSIGN(std::vector<RunMetricAtStep> at3, store_->MetricsAtStep(id, 3));
  ASSERT_THAT(at3, SizeIs(2));
  EXPECT_EQ(at3[0].run_id, l1->run.id);
  EXPECT_EQ(at3[0].row.total, 16);
  EXPECT_EQ(at3[1].row.total, 26);
  ASSERT_OK_AND_ASSIGN(std::vector<RunMetricAtStep> at2, store_->MetricsAtStep(id, 2));
  EXPECT_THAT(at2, SizeIs(0));

  ASSERT_THAT(store_->RequestPrune(l2->run.id, 1), IsOk());
  ASSERT_THAT(store_->RequestPrune(l2->run.id, 1), IsOk());  // idempotent
  ASSERT_OK_AND_ASSIGN(RunRecord marked, store_->GetRun(l2->run.id));
  EXPECT_TRUE(marked.prune_requested);
  EXPECT_THAT(store_->RequestPrune(l2->run.id, 7), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("attempt 7")));
  // A new attempt starts without the request (the old one's lease expired).
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> expired, store_->ExpireLeases(1000));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> again, store_->ClaimNextRun("z", 1000, 2000));
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->run.prune_requested);
  ASSERT_THAT(store_->FinishRun(again->run.id, again->attempt, RunState::kPruned, "", 1100), IsOk());
  ASSERT_OK_AND_ASSIGN(RunRecord pruned, store_->GetRun(again->run.id));
  EXPECT_EQ(pruned.state, RunState::kPruned);
}

TEST_P(StoreContractTest, OnlyAnAttemptsOwnerPassesTheOwnerCheck) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_TRUE(lease.has_value());
  EXPECT_THAT(store_->CheckAttemptOwner(lease->run.id, 1, "agent-a"), IsOk());
  EXPECT_THAT(store_->CheckAttemptOwner(lease->run.id, 1, "agent-b"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("agent-b")));
  EXPECT_THAT(store_->CheckAttemptOwner(lease->run.id, 2, "agent-a"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("attempt 2")));
  EXPECT_THAT(store_->CheckAttemptOwner(999, 1, "agent-a"), StatusIs(absl::StatusCode::kPermissionDenied, _));
}

// CompleteAttempt checks the holder, ends the run and counts the outcome in
// one transaction: repeats (concurrent ones too) change nothing more.
TEST_P(StoreContractTest, CompleteAttemptChecksEndsAndCountsOnce) {
  AgentRecord agent;
  agent.name = "agent-a";
  ASSERT_THAT(store_->UpsertAgent(agent, 0), IsOk());
  agent.name = "agent-b";
  ASSERT_THAT(store_->UpsertAgent(agent, 0), IsOk());
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(3)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  const int64_t run = lease->run.id;
  AttemptOutcome outcome;
  outcome.agent = "agent-b";
  outcome.state = RunState::kFailed;
  outcome.error = "boom";
  EXPECT_THAT(store_->CompleteAttempt(run, 1, outcome, 50).status(),
              StatusIs(absl::StatusCode::kPermissionDenied, _));
  outcome.agent = "agent-a";
  outcome.state = RunState::kSucceeded;
  outcome.last_step = 10;
  ASSERT_THAT(store_->AppendMetrics(run, 1, {Metric(0, 1), Metric(9, 1)}), IsOk());
  EXPECT_THAT(store_->CompleteAttempt(run, 1, outcome, 50).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("step 9 of 10")));
  outcome.state = RunState::kPruned;
  EXPECT_THAT(store_->CompleteAttempt(run, 1, outcome, 50).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("did not ask")));
  ASSERT_OK_AND_ASSIGN(RunRecord running, store_->GetRun(run));
  EXPECT_EQ(running.state, RunState::kRunning);

  outcome.state = RunState::kFailed;
  outcome.quarantine_after = 0;
  std::vector<std::thread> retries;
  std::atomic<int> applied{0};
  for (int i = 0; i < 8; ++i) {
    retries.emplace_back([&] {
      absl::StatusOr<CompletedAttempt> done = store_->CompleteAttempt(run, 1, outcome, 60);
      EXPECT_THAT(done.status(), IsOk());
      if (done.ok() && done->applied) ++applied;
    });
  }
  for (std::thread& t : retries) t.join();
  EXPECT_EQ(applied.load(), 1);
  ASSERT_OK_AND_ASSIGN(AgentRecord a, store_->GetAgent("agent-a"));
  EXPECT_EQ(a.failures, 1);
  EXPECT_EQ(a.runs_finished, 1);
  ASSERT_OK_AND_ASSIGN(AgentRecord b, store_->GetAgent("agent-b"));
  EXPECT_EQ(b.failures, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->ListAttempts(run));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].state, RunState::kFailed);

  // A diverged run: FAILED with its step, its latest snapshot as final, and
  // (counts_for_agent false) no change to the agent's counters.
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-a", 70, 170));
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{second->run.id, 1, 4, "s/run1/4.png", false, "aa"}), IsOk());
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{second->run.id, 1, 2, "s/run1/2.png", false, "bb"}), IsOk());
  AttemptOutcome diverged;
  diverged.agent = "agent-a";
  diverged.state = RunState::kFailed;
  diverged.error = "diverged at step 5: total loss is NaN";
  diverged.diverged_step = 5;
  diverged.counts_for_agent = false;
  ASSERT_OK_AND_ASSIGN(CompletedAttempt done, store_->CompleteAttempt(second->run.id, 1, diverged, 80));
  EXPECT_TRUE(done.applied);
  ASSERT_OK_AND_ASSIGN(RunRecord ended, store_->GetRun(second->run.id));
  EXPECT_EQ(ended.state, RunState::kFailed);
  EXPECT_EQ(ended.diverged_step, 5);
  EXPECT_EQ(ended.final_snapshot, "s/run1/4.png");
  ASSERT_OK_AND_ASSIGN(a, store_->GetAgent("agent-a"));
  EXPECT_EQ(a.failures, 1);
  EXPECT_EQ(a.runs_finished, 1);
}

// Records and files never disagree: a stored step's bytes are never
// replaced, and a final at a stored step marks that record final.
TEST_P(StoreContractTest, ASnapshotsRecordIsNeverReplaced) {
  ASSERT_THAT(store_->CreateSweep(MakeSweep("s"), MakeRuns(1)), IsOk());
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  const int64_t run = lease->run.id;
  int committed = 0;
  auto commit = [&] {
    ++committed;
    return absl::OkStatus();
  };
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{run, 1, 3, "s/3.png", false, "aa"}, commit), IsOk());
  EXPECT_EQ(committed, 1);
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{run, 1, 3, "s/3.png", false, "aa"}, commit), IsOk());
  EXPECT_EQ(committed, 1);  // a retry writes no file
  EXPECT_THAT(store_->AddSnapshot(SnapshotRecord{run, 1, 3, "s/3-other.png", false, "bb"}, commit),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("step 3")));
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{run, 1, 3, "s/final.png", true, "aa"}, commit), IsOk());
  EXPECT_EQ(committed, 1);
  ASSERT_OK_AND_ASSIGN(RunRecord after, store_->GetRun(run));
  EXPECT_EQ(after.final_snapshot, "s/3.png");
  // A failing file write rolls its record back.
  EXPECT_THAT(store_->AddSnapshot(SnapshotRecord{run, 1, 5, "s/5.png", false, "cc"},
                                  [] { return absl::InternalError("disk full"); }),
              StatusIs(absl::StatusCode::kInternal, _));
  ASSERT_OK_AND_ASSIGN(std::optional<SnapshotRecord> missing, store_->FindSnapshot(run, 1, 5));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<SnapshotRecord> snapshots, store_->ListSnapshots(run));
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_TRUE(snapshots[0].final);
  EXPECT_EQ(snapshots[0].sha256, "aa");
}

TEST_P(StoreContractTest, RunsPageInExpansionOrderAndSweepsAddUp) {
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(MakeSweep("s"), MakeRuns(7)));
  ASSERT_OK_AND_ASSIGN(int64_t other, store_->CreateSweep(MakeSweep("t"), MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_THAT(store_->AppendMetrics(lease->run.id, 1, {Metric(0, 1), Metric(4, 1)}), IsOk());
  std::vector<int> seen;
  for (int after = -1;;) {
    ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> page, store_->ListRunsPage(id, RunPageRequest{after, 3, {}}));
    if (page.empty()) break;
    for (const RunRecord& run : page) seen.push_back(run.index);
    after = page.back().index;
  }
  EXPECT_THAT(seen, ElementsAre(0, 1, 2, 3, 4, 5, 6));
  ASSERT_OK_AND_ASSIGN(std::vector<RunRecord> running,
                       store_->ListRunsPage(id, RunPageRequest{-1, 10, {RunState::kRunning}}));
  ASSERT_THAT(running, SizeIs(1));
  EXPECT_EQ(running[0].id, lease->run.id);

  ASSERT_OK_AND_ASSIGN(std::vector<SweepTotals> all, store_->TotalSweeps(0));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].sweep_id, id);
  EXPECT_EQ(all[0].runs_by_state.at(RunState::kQueued), 6);
  EXPECT_EQ(all[0].runs_by_state.at(RunState::kRunning), 1);
  EXPECT_EQ(all[0].steps_run, 4);
  EXPECT_EQ(all[1].sweep_id, other);
  ASSERT_OK_AND_ASSIGN(std::vector<SweepTotals> one, store_->TotalSweeps(other));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].runs_by_state.at(RunState::kQueued), 2);
  ASSERT_OK_AND_ASSIGN(std::vector<SweepTotals> second, store_->TotalSweepsBetween(other, other + 5));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].sweep_id, other);
  ASSERT_OK_AND_ASSIGN(std::vector<SweepRecord> page, store_->ListSweepsPage(id, 10, /*with_text=*/true));
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, other);
  EXPECT_EQ(page[0].yaml, "name: t\n");
  ASSERT_OK_AND_ASSIGN(std::vector<SweepRecord> listed, store_->ListSweeps(/*with_text=*/false));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "s");
  EXPECT_EQ(listed[0].yaml, "");
  EXPECT_EQ(listed[0].spec_json, "");
}

// A paused sweep's queued runs are skipped without being walked: the next
// sweep's run is claimed, and max_concurrent still holds.
TEST_P(StoreContractTest, ClaimSkipsPausedSweepsToTheNextOneWithWork) {
  ASSERT_OK_AND_ASSIGN(int64_t paused, store_->CreateSweep(MakeSweep("paused"), MakeRuns(50)));
  ASSERT_THAT(store_->SetSweepPaused(paused, true), IsOk());
  NewSweep limited = MakeSweep("limited");
  limited.max_concurrent = 1;
  ASSERT_OK_AND_ASSIGN(int64_t capped, store_->CreateSweep(limited, MakeRuns(3)));
  ASSERT_OK_AND_ASSIGN(int64_t open, store_->CreateSweep(MakeSweep("open"), MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> first, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_EQ(first->run.sweep_id, capped);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> second, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_EQ(second->run.sweep_id, open);
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> none, store_->ClaimNextRun("agent-a", 0, 100));
  EXPECT_FALSE(none.has_value());
}

TEST_P(StoreContractTest, DeletingASweepRemovesEveryRowItOwns) {
  NewSweep doomed = MakeSweep("doomed");
  doomed.spec_json = R"({"images": {"sha256:aa": "cat.png", "sha256:bb": "mine.png"}})";
  NewSweep kept = MakeSweep("kept");
  kept.spec_json = R"({"images": {"sha256:aa": "cat.png"}})";
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateSweep(doomed, MakeRuns(2)));
  ASSERT_OK_AND_ASSIGN(int64_t kept_id, store_->CreateSweep(kept, MakeRuns(1)));
  ASSERT_OK_AND_ASSIGN(std::optional<Lease> lease, store_->ClaimNextRun("agent-a", 0, 100));
  ASSERT_THAT(store_->AppendMetrics(lease->run.id, 1, {Evaluated(0, 1), Evaluated(1, 1)}), IsOk());
  ASSERT_THAT(store_->AddSnapshot(SnapshotRecord{lease->run.id, 1, 1, "1-doomed/run-0/a.png", false, "aa"}), IsOk());
  EXPECT_THAT(store_->DeleteSweep(id).status(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cancel")));
  ASSERT_THAT(store_->CancelSweep(id, "bye", 10), IsOk());
  ASSERT_OK_AND_ASSIGN(DeletedSweep deleted, store_->DeleteSweep(id));
  EXPECT_EQ(deleted.sweep.name, "doomed");
  EXPECT_EQ(deleted.runs, 2);
  EXPECT_EQ(deleted.metric_rows, 2);
  EXPECT_THAT(deleted.snapshot_paths, ElementsAre("1-doomed/run-0/a.png"));
  EXPECT_THAT(deleted.unshared_blobs, ElementsAre("sha256:bb"));
  EXPECT_THAT(store_->GetSweep(id).status(), StatusIs(absl::StatusCode::kNotFound, _));
  EXPECT_THAT(store_->GetRun(lease->run.id).status(), StatusIs(absl::StatusCode::kNotFound, _));
  ASSERT_OK_AND_ASSIGN(std::vector<RunCount> counts, store_->CountRuns());
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[0].sweep_id, kept_id);
  EXPECT_THAT(store_->DeleteSweep(id).status(), StatusIs(absl::StatusCode::kNotFound, _));
}

}  // namespace stylesweep::testing
