#include "coordinator/scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/files.h"
#include "nlohmann/json.hpp"
#include "tests/testing/fake_clock.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

constexpr char kSweep[] = R"(name: tiny
content: cat.png
style: starry.png
parameters:
  style_weight: {values: [0.1, 1.0]}
  steps: {value: 3}
  image_size: {value: 32}
)";

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("scheduler_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    auto store = OpenSqliteStore(":memory:");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    artifacts_ = std::make_unique<ArtifactStore>(dir_.string());
    scheduler_ = std::make_unique<Scheduler>(*store_, *artifacts_, clock_, SchedulerOptions{10000, 1000});
    files_ = {{"cat.png", "cat-bytes"}, {"starry.png", "starry-bytes"}};
    ASSERT_TRUE(scheduler_->RegisterAgent(AgentRecord{"a1", "host", "cpu", "test", 0, 0}).ok());
    ASSERT_TRUE(scheduler_->RegisterAgent(AgentRecord{"a2", "host", "cpu", "test", 0, 0}).ok());
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Scheduler> scheduler_;
  std::map<std::string, std::string> files_;
};

TEST_F(SchedulerTest, SubmitStoresImagesByContentAndQueuesEveryRun) {
  auto result = scheduler_->Submit(kSweep, "tiny.yaml", files_, /*dry_run=*/false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->sweep.id, 0);
  ASSERT_EQ(result->runs.size(), 2u);
  for (const RunRecord& run : result->runs) EXPECT_EQ(run.state, RunState::kQueued);

  const auto params = nlohmann::json::parse(result->runs[0].params_json);
  const std::string content = params["content"];
  ASSERT_EQ(content.rfind("sha256:", 0), 0u) << content;
  auto bytes = scheduler_->FetchBlob(content);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "cat-bytes");
  // The names the user wrote are kept for reports.
  const auto spec = nlohmann::json::parse(result->sweep.spec_json);
  EXPECT_EQ(spec["images"][content], "cat.png");
}

TEST_F(SchedulerTest, DryRunStoresNothing) {
  auto result = scheduler_->Submit(kSweep, "tiny.yaml", files_, /*dry_run=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->runs.size(), 2u);
  EXPECT_TRUE(store_->ListSweeps()->empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "blobs"));
}

TEST_F(SchedulerTest, BadSubmissionsStoreNothing) {
  auto missing = scheduler_->Submit(kSweep, "tiny.yaml", {{"cat.png", "x"}}, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("image 'starry.png' was not sent"));

  auto invalid = scheduler_->Submit("content: a.png\nstyle: b.png\nsteps: -1\n", "bad.yaml",
                                    {{"a.png", "a"}, {"b.png", "b"}}, false);
  ASSERT_FALSE(invalid.ok());
  EXPECT_THAT(std::string(invalid.status().message()), HasSubstr("bad.yaml:3:8: steps"));
  EXPECT_TRUE(store_->ListSweeps()->empty());
}

TEST_F(SchedulerTest, LeasesRunsInOrderUntilNoneAreLeft) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  auto first = scheduler_->Lease("a1");
  auto second = scheduler_->Lease("a2");
  auto third = scheduler_->Lease("a1");
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  ASSERT_TRUE(first->has_value() && second->has_value());
  EXPECT_LT((*first)->run_id, (*second)->run_id);
  EXPECT_EQ((*first)->attempt, 1);
  EXPECT_FALSE(third->has_value());
}

TEST_F(SchedulerTest, RecordsLossesSnapshotsAndSuccess) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  const LeaseGrant grant = **lease;
  std::vector<MetricRow> rows = {{0, 1, 2, 3, 6, 0.1}, {1, 1, 1, 1, 3, 0.1}};
  ASSERT_TRUE(scheduler_->ReportMetrics(grant.run_id, grant.attempt, rows).ok());
  ASSERT_TRUE(scheduler_->ReportMetrics(grant.run_id, grant.attempt, rows).ok());  // a retried RPC
  auto path = scheduler_->UploadSnapshot(grant.run_id, grant.attempt, 3, /*final=*/true, "png-bytes");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*ReadFileToString((dir_ / *path).string()), "png-bytes");
  ASSERT_TRUE(scheduler_->Complete(grant.run_id, grant.attempt, RunState::kSucceeded, "").ok());

  auto run = store_->GetRun(grant.run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->state, RunState::kSucceeded);
  EXPECT_EQ(run->last_step, 1);
  EXPECT_DOUBLE_EQ(run->total_loss, 3);
  EXPECT_EQ(run->final_snapshot, *path);
  EXPECT_EQ(store_->GetMetrics(grant.run_id, 0)->size(), 2u);
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesAndRefusesTheOldHolder) {
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  const LeaseGrant old = **lease;

  clock_.Advance(5000);
  auto beat = scheduler_->Heartbeat("a1", old.run_id, old.attempt);
  ASSERT_TRUE(beat.ok());
  EXPECT_FALSE(*beat);  // still ours; lease renewed to now + 10 s

  clock_.Advance(10001);
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(store_->GetRun(old.run_id)->state, RunState::kQueued);

  auto retry = scheduler_->Lease("a2");
  ASSERT_TRUE(retry.ok() && retry->has_value());
  EXPECT_EQ((*retry)->run_id, old.run_id);
  EXPECT_EQ((*retry)->attempt, 2);

  // The old holder comes back: told to stop, and nothing it sends lands.
  auto late = scheduler_->Heartbeat("a1", old.run_id, old.attempt);
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(*late);
  EXPECT_TRUE(absl::IsFailedPrecondition(scheduler_->ReportMetrics(old.run_id, old.attempt, {{0, 1, 1, 1, 3, 0}})));
  EXPECT_TRUE(absl::IsFailedPrecondition(scheduler_->UploadSnapshot(old.run_id, old.attempt, 1, true, "x").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(scheduler_->Complete(old.run_id, old.attempt, RunState::kSucceeded, "")));
  EXPECT_EQ(store_->GetRun(old.run_id)->state, RunState::kRunning);
  EXPECT_EQ(store_->GetRun(old.run_id)->agent, "a2");
}

TEST_F(SchedulerTest, AgentsMayOnlyEndRunsAsSucceededFailedOrCancelled) {
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Complete((*lease)->run_id, 1, RunState::kQueued, "")));
  ASSERT_TRUE(scheduler_->Complete((*lease)->run_id, 1, RunState::kFailed, "cannot decode image").ok());
  auto run = store_->GetRun((*lease)->run_id);
  EXPECT_EQ(run->state, RunState::kFailed);
  EXPECT_EQ(run->error, "cannot decode image");
}

}  // namespace
}  // namespace stylesweep
