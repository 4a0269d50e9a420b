#include "coordinator/scheduler/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/run_params.h"
#include "coordinator/scheduler/early_stop.h"
#include "nlohmann/json.hpp"
#include "tests/testing/crafted_images.h"
#include "tests/testing/fake_clock.h"

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kSweep[] = R"(name: tiny
content: cat.png
style: starry.png
parameters:
  style_weight: {values: [0.1, 1.0]}
  steps: {value: 3}
  image_size: {value: 32}
)";

// The bytes of a PNG as far as the coordinator checks them (signature and
// IHDR), followed by `tag`, which makes different images different.
std::string Png(const std::string& tag) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  png += std::string("\0\0\0\x0dIHDR", 8);
  png += std::string("\0\0\0\x20\0\0\0\x20\x08\x02\0\0\0", 13);  // 32 x 32, 8-bit RGB
  png += std::string("\0\0\0\0", 4);                                    // the CRC (not checked)
  return png + tag;
}

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
    files_ = {{"cat.png", Png("cat")}, {"starry.png", Png("starry")}};
    ASSERT_TRUE(scheduler_->RegisterAgent(Agent("a1")).ok());
    ASSERT_TRUE(scheduler_->RegisterAgent(Agent("a2")).ok());
  }

  static AgentRecord Agent(const std::string& name) {
    AgentRecord agent;
    agent.name = name;
    agent.host = "host";
    agent.device = "cpu";
    agent.description = "test";
    return agent;
  }

  // Leases the next run to `agent` and fails it.
  void LeaseAndFail(const std::string& agent, const std::string& error) {
    auto lease = scheduler_->Lease(agent);
    ASSERT_TRUE(lease.ok() && lease->has_value()) << agent;
    ASSERT_TRUE(scheduler_->Complete(agent, (*lease)->run_id, (*lease)->attempt, RunState::kFailed, error).ok());
  }

  // Reports the losses of the run's last step and ends it SUCCEEDED.
  void Succeed(const std::string& agent, const LeaseGrant& grant) {
    const int last = PlannedSteps(grant.params_json);
    ASSERT_TRUE(scheduler_->ReportMetrics(agent, grant.run_id, grant.attempt, {{last, 1, 1, 1, 3, 0}}).ok());
    ASSERT_TRUE(scheduler_->Complete(agent, grant.run_id, grant.attempt, RunState::kSucceeded, "").ok());
  }

  // Every file under the artifacts directory except the input images.
  std::vector<std::string> SnapshotFiles() const {
    std::vector<std::string> files;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const std::string relative = std::filesystem::relative(it->path(), dir_).string();
      if (it->is_regular_file() && relative.rfind("blobs/", 0) != 0) files.push_back(relative);
    }
    std::sort(files.begin(), files.end());
    return files;
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
  EXPECT_EQ(*bytes, Png("cat"));
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
  auto missing = scheduler_->Submit(kSweep, "tiny.yaml", {{"cat.png", Png("x")}}, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("image 'starry.png' was not sent"));

  auto invalid = scheduler_->Submit("content: a.png\nstyle: b.png\nsteps: -1\n", "bad.yaml",
                                    {{"a.png", Png("a")}, {"b.png", Png("b")}}, false);
  ASSERT_FALSE(invalid.ok());
  EXPECT_THAT(std::string(invalid.status().message()), HasSubstr("bad.yaml:3:8: steps"));
  EXPECT_TRUE(store_->ListSweeps()->empty());
}

// The coordinator trusts no client to have checked: bytes that are not a
// PNG or JPEG, and images declaring more pixels than an agent can afford to
// decode, are refused by name, with nothing stored (dry run or not).
TEST_F(SchedulerTest, SubmittedImagesMustBePngsOrJpegsWithinThePixelLimit) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"root:x:0:0:root:/root:/bin/bash\n",
       "tiny.yaml: image 'starry.png': not a PNG or JPEG: the first bytes are 72 6f 6f 74 3a 78 3a 30 (\"root:x:0\"); "
       "a PNG starts with 89 50 4e 47, a JPEG with ff d8"},
      {Png("x").substr(0, 20), "tiny.yaml: image 'starry.png': truncated PNG header: the signature and IHDR chunk "
                               "needs 33 bytes, the data has 20"},
      {testing::PngDeclaring(15000, 15000),
       "tiny.yaml: image 'starry.png' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi "
       "pixels (67108864, e.g. 8192x8192)"},
      {testing::JpegDeclaring(9000, 9000),
       "tiny.yaml: image 'starry.png' declares 9000x9000 pixels (81000000); an image may have at most 64 Mi pixels "
       "(67108864, e.g. 8192x8192)"},
  };
  for (const bool dry_run : {false, true}) {
    for (const auto& [bytes, message] : refused) {
      SCOPED_TRACE(message);
      auto files = files_;
      files["starry.png"] = bytes;
      auto result = scheduler_->Submit(kSweep, "tiny.yaml", files, dry_run);
      EXPECT_TRUE(absl::IsInvalidArgument(result.status())) << result.status();
      EXPECT_EQ(result.status().message(), message);
    }
  }
  EXPECT_TRUE(store_->ListSweeps()->empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "blobs"));
  // At the limit, and as a JPEG: stored.
  auto files = files_;
  files["starry.png"] = testing::JpegDeclaring(8192, 8192);
  EXPECT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files, false).ok());
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
  ASSERT_TRUE(scheduler_->ReportMetrics("a1", grant.run_id, grant.attempt, rows).ok());
  ASSERT_TRUE(scheduler_->ReportMetrics("a1", grant.run_id, grant.attempt, rows).ok());  // a retried RPC
  auto path = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 3, /*final=*/true, Png("final"));
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*ReadFileToString((dir_ / *path).string()), Png("final"));
  // Two of three steps are not a success.
  absl::Status early = scheduler_->Complete("a1", grant.run_id, grant.attempt, RunState::kSucceeded, "");
  EXPECT_TRUE(absl::IsFailedPrecondition(early)) << early;
  EXPECT_THAT(std::string(early.message()), HasSubstr("reach step 1 of 3"));
  EXPECT_EQ(store_->GetRun(grant.run_id)->state, RunState::kRunning);
  ASSERT_TRUE(scheduler_->ReportMetrics("a1", grant.run_id, grant.attempt, {{3, 1, 1, 1, 2.5, 0.1}}).ok());
  ASSERT_TRUE(scheduler_->Complete("a1", grant.run_id, grant.attempt, RunState::kSucceeded, "").ok());

  auto run = store_->GetRun(grant.run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->state, RunState::kSucceeded);
  EXPECT_EQ(run->last_step, 3);
  EXPECT_DOUBLE_EQ(run->total_loss, 2.5);
  EXPECT_EQ(run->final_snapshot, *path);
  EXPECT_EQ(store_->GetMetrics(grant.run_id, 0)->size(), 3u);
  EXPECT_EQ((*scheduler_->ListAgents())[0].agent.runs_finished, 1);
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesAndRefusesTheOldHolder) {
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  const LeaseGrant old = **lease;

  clock_.Advance(5000);
  auto beat = scheduler_->Heartbeat("a1", old.run_id, old.attempt);
  ASSERT_TRUE(beat.ok());
  EXPECT_EQ(*beat, RunDirective::kContinue);  // still ours; lease renewed to now + 10 s

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
  EXPECT_EQ(*late, RunDirective::kStop);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      scheduler_->ReportMetrics("a1", old.run_id, old.attempt, {{0, 1, 1, 1, 3, 0}}).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      scheduler_->UploadSnapshot("a1", old.run_id, old.attempt, 1, true, Png("late")).status()));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(scheduler_->Complete("a1", old.run_id, old.attempt, RunState::kSucceeded, "")));
  EXPECT_EQ(store_->GetRun(old.run_id)->state, RunState::kRunning);
  EXPECT_EQ(store_->GetRun(old.run_id)->agent, "a2");
}

TEST_F(SchedulerTest, AgentsMayNotEndRunsAsQueuedOrLost) {
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Complete("a1", (*lease)->run_id, 1, RunState::kQueued, "")));
  EXPECT_TRUE(absl::IsInvalidArgument(scheduler_->Complete("a1", (*lease)->run_id, 1, RunState::kLost, "")));
  ASSERT_TRUE(scheduler_->Complete("a1", (*lease)->run_id, 1, RunState::kFailed, "cannot decode image").ok());
  auto run = store_->GetRun((*lease)->run_id);
  EXPECT_EQ(run->state, RunState::kFailed);
  EXPECT_EQ(run->error, "cannot decode image");
}

TEST_F(SchedulerTest, TheSameSweepTwiceIsRefusedUnlessAllowed) {
  auto first = scheduler_->Submit(kSweep, "tiny.yaml", files_, false);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = scheduler_->Submit(kSweep, "copy.yaml", files_, false);
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  EXPECT_THAT(std::string(again.status().message()),
              HasSubstr(absl::StrCat("already submitted as sweep ", first->sweep.id, " 'tiny'")));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("--allow-duplicate"));
  // Other image bytes make another sweep.
  auto edited = files_;
  edited["cat.png"] = Png("another cat");
  EXPECT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", edited, false).ok());
  auto allowed = scheduler_->Submit(kSweep, "tiny.yaml", files_, SubmitOptions{false, true, {}});
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_NE(allowed->sweep.id, first->sweep.id);
  EXPECT_EQ(allowed->sweep.content_hash, first->sweep.content_hash);
  EXPECT_EQ(store_->ListSweeps()->size(), 3u);
}

constexpr char kRandom[] = R"(method: random
run_cap: 5
content: cat.png
style: starry.png
steps: 3
parameters:
  style_weight: {min: 1.0e-3, max: 1.0, distribution: log_uniform_values}
  tv_weight: {values: [1, 10]}
)";

TEST_F(SchedulerTest, RandomSweepStoresRunCapDrawsFromARecordedSeed) {
  auto dry = scheduler_->Submit(kRandom, "r.yaml", files_, true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  ASSERT_EQ(dry->runs.size(), 5u);
  auto result = scheduler_->Submit(kRandom, "r.yaml", files_, false);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->runs.size(), 5u);
  EXPECT_EQ(result->sweep.draws, 5);
  EXPECT_EQ(result->sweep.run_cap, 5);
  EXPECT_EQ(result->sweep.method, "random");
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(result->runs[i].params_hash, dry->runs[i].params_hash) << "the dry run shows the same draws";
  }
  // The runs are draws 0..4 of the recorded seed: a coordinator that reads the
  // sweep back can tell which draw comes next and what the earlier ones were.
  auto spec = ParseSweep(kRandom, "r.yaml");
  ASSERT_TRUE(spec.ok());
  const nlohmann::json images = nlohmann::json::parse(result->sweep.spec_json)["images"];
  std::map<std::string, std::string> ids;
  for (const auto& [id, name] : images.items()) ids[name.get<std::string>()] = id;
  ASSERT_TRUE(spec->MapImages([&](const std::string& ref) -> absl::StatusOr<std::string> { return ids[ref]; }).ok());
  auto drawn = spec->Draw(result->sweep.search_seed, 0, 5);
  ASSERT_TRUE(drawn.ok());
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*drawn)[i].Hash(), result->runs[i].params_hash);
}

constexpr char kBayes[] = R"(method: bayes
metric: {name: loss/total}
run_cap: 3
max_concurrent: 2
content: cat.png
style: starry.png
steps: 9
metric: {name: loss/total}  # the losses these tests report
early_terminate: {type: hyperband, min_iter: 3, eta: 3}
parameters:
  style_weight: {min: 1.0e-3, max: 1.0, distribution: log_uniform_values}
)";

TEST_F(SchedulerTest, BayesCreatesRunsLazilyWithinMaxConcurrentAndRunCap) {
  auto submitted = scheduler_->Submit(kBayes, "b.yaml", files_, false);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_TRUE(submitted->runs.empty());
  EXPECT_EQ(submitted->sweep.draws, 0);

  auto l1 = scheduler_->Lease("a1");
  auto l2 = scheduler_->Lease("a2");
  ASSERT_TRUE(l1.ok() && l1->has_value() && l2.ok() && l2->has_value());
  EXPECT_NE((*l1)->run_id, (*l2)->run_id);
  auto l3 = scheduler_->Lease("a1");  // max_concurrent: 2
  ASSERT_TRUE(l3.ok());
  EXPECT_FALSE(l3->has_value());
  EXPECT_EQ(store_->ListRuns(submitted->sweep.id)->size(), 2u);

  Succeed("a1", **l1);
  auto l4 = scheduler_->Lease("a1");
  ASSERT_TRUE(l4.ok() && l4->has_value());
  auto l5 = scheduler_->Lease("a1");  // run_cap: 3
  ASSERT_TRUE(l5.ok());
  EXPECT_FALSE(l5->has_value());
  auto runs = store_->ListRuns(submitted->sweep.id);
  ASSERT_EQ(runs->size(), 3u);
  for (const RunRecord& run : *runs) EXPECT_FALSE(run.point_json.empty());
  EXPECT_EQ(store_->GetSweep(submitted->sweep.id)->draws, 3);
}

TEST_F(SchedulerTest, HyperbandAsksAWorseRunToStopAndItEndsPrunedWithItsLatestImage) {
  auto submitted = scheduler_->Submit(kBayes, "b.yaml", files_, false);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const LeaseGrant good = **scheduler_->Lease("a1");
  const LeaseGrant bad = **scheduler_->Lease("a2");

  // PRUNED needs early termination's verdict.
  EXPECT_TRUE(absl::IsFailedPrecondition(scheduler_->Complete("a2", bad.run_id, 1, RunState::kPruned, "")));
  auto first = scheduler_->ReportMetrics("a1", good.run_id, 1, {{0, 1, 1, 1, 9, 0}, {3, 1, 1, 1, 2, 0}});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->directive, RunDirective::kContinue);  // alone at the rung
  ASSERT_TRUE(scheduler_->UploadSnapshot("a2", bad.run_id, 1, 2, false, Png("at 2")).ok());
  auto second = scheduler_->ReportMetrics("a2", bad.run_id, 1, {{0, 1, 1, 1, 9, 0}, {3, 1, 1, 1, 5, 0}});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->directive, RunDirective::kPrune);  // worse than the only other run at step 3
  clock_.Advance(500);
  auto beat = scheduler_->Heartbeat("a2", bad.run_id, 1);
  ASSERT_TRUE(beat.ok());
  EXPECT_EQ(*beat, RunDirective::kPrune);  // told again until it stops
  EXPECT_EQ(*scheduler_->Heartbeat("a1", good.run_id, 1), RunDirective::kContinue);

  ASSERT_TRUE(scheduler_->Complete("a2", bad.run_id, 1, RunState::kPruned, "").ok());
  auto pruned = store_->GetRun(bad.run_id);
  EXPECT_EQ(pruned->state, RunState::kPruned);
  EXPECT_EQ(pruned->last_step, 3);
  EXPECT_EQ(pruned->total_loss, 5);
  EXPECT_THAT(pruned->final_snapshot, HasSubstr("step-000002"));
  EXPECT_EQ(store_->GetMetrics(bad.run_id, 0)->size(), 2u);
  auto runs = store_->ListRuns(submitted->sweep.id);
  const ComputeSaved saved = CountSteps(*runs);
  EXPECT_EQ(saved.steps_saved, 6);  // 9 steps, stopped at 3
}

TEST_F(SchedulerTest, ARestartedCoordinatorContinuesABayesSweepAtTheNextDraw) {
  auto submitted = scheduler_->Submit(kBayes, "b.yaml", files_, false);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const LeaseGrant first = **scheduler_->Lease("a1");
  // A new scheduler over the same store: what a restarted coordinator has.
  Scheduler restarted(*store_, *artifacts_, clock_, SchedulerOptions{10000, 1000});
  const LeaseGrant second = **restarted.Lease("a2");
  auto runs = store_->ListRuns(submitted->sweep.id);
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, first.run_id);
  EXPECT_EQ((*runs)[1].id, second.run_id);
  EXPECT_EQ((*runs)[1].index, 1);
  EXPECT_NE((*runs)[0].params_hash, (*runs)[1].params_hash);  // draw 1, not draw 0 again
  EXPECT_EQ(store_->GetSweep(submitted->sweep.id)->draws, 2);
}

// Weights stay on the agents' machines: every run names the absolute path
// the client resolved, also the runs a Bayesian sweep proposes later.
TEST_F(SchedulerTest, WeightsAreNamedByAbsolutePathInEveryRun) {
  const std::string grid = std::string(kSweep) + "weights: models/vgg19.pth\n";
  auto relative = scheduler_->Submit(grid, "tiny.yaml", files_, SubmitOptions{});
  ASSERT_FALSE(relative.ok());
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(relative.status().message()),
              AllOf(HasSubstr("tiny.yaml:8"), HasSubstr("models/vgg19.pth"), HasSubstr("relative path")));

  SubmitOptions options;
  options.weights_paths = {{"models/vgg19.pth", "/srv/models/vgg19.pth"}};
  auto submitted = scheduler_->Submit(grid, "tiny.yaml", files_, options);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  for (const RunRecord& run : submitted->runs) {
    EXPECT_EQ(nlohmann::json::parse(run.params_json)["weights"], "/srv/models/vgg19.pth");
  }

  const std::string bayes = std::string(kBayes) + "weights: models/vgg19.pth\n";
  auto proposed = scheduler_->Submit(bayes, "b.yaml", files_, options);
  ASSERT_TRUE(proposed.ok()) << proposed.status();
  bool saw_bayes_run = false;
  for (int i = 0; i < 4; ++i) {
    auto lease = scheduler_->Lease(i % 2 ? "a1" : "a2");
    ASSERT_TRUE(lease.ok()) << lease.status();
    if (!lease->has_value()) break;
    EXPECT_EQ(nlohmann::json::parse((*lease)->params_json)["weights"], "/srv/models/vgg19.pth");
    saw_bayes_run = saw_bayes_run || (*lease)->sweep_id == proposed->sweep.id;
  }
  EXPECT_TRUE(saw_bayes_run);
}


TEST_F(SchedulerTest, AnAgentWhoseRunsFailThreeTimesInARowIsQuarantinedUntilReleased) {
  constexpr char kSix[] = "content: cat.png\nstyle: starry.png\nparameters:\n  seed: {values: [1, 2, 3, 4, 5, 6]}\n";
  ASSERT_TRUE(scheduler_->Submit(kSix, "six.yaml", files_, false).ok());
  LeaseAndFail("a1", "CUDA error: an illegal memory access");
  LeaseAndFail("a1", "CUDA error: an illegal memory access");
  LeaseAndFail("a2", "cannot decode image");  // another agent's failure does not count for a1
  {
    auto views = scheduler_->ListAgents();
    ASSERT_TRUE(views.ok());
    EXPECT_EQ((*views)[0].state, AgentState::kIdle);
    EXPECT_EQ((*views)[0].agent.consecutive_failures, 2);
  }
  LeaseAndFail("a1", "CUDA error: an illegal memory access");

  // Quarantined: no more runs, and it says why.
  auto refused = scheduler_->Lease("a1");
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->has_value());
  auto reason = scheduler_->QuarantineOf("a1");
  ASSERT_TRUE(reason.ok());
  EXPECT_THAT(*reason, HasSubstr("3 runs in a row failed"));
  EXPECT_THAT(*reason, HasSubstr("illegal memory access"));
  auto views = scheduler_->ListAgents();
  ASSERT_TRUE(views.ok());
  EXPECT_EQ((*views)[0].agent.name, "a1");
  EXPECT_EQ((*views)[0].state, AgentState::kQuarantined);
  EXPECT_EQ((*views)[1].state, AgentState::kIdle);
  // The other agent still works.
  auto other = scheduler_->Lease("a2");
  ASSERT_TRUE(other.ok() && other->has_value());

  auto released = scheduler_->ReleaseAgent("a1");
  ASSERT_TRUE(released.ok());
  EXPECT_TRUE(*released);
  auto again = scheduler_->Lease("a1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->has_value());
  EXPECT_TRUE(absl::IsNotFound(scheduler_->ReleaseAgent("nobody").status()));
}

TEST_F(SchedulerTest, ASuccessBreaksTheRunOfFailures) {
  constexpr char kFive[] = "content: cat.png\nstyle: starry.png\nparameters:\n  seed: {values: [1, 2, 3, 4, 5]}\n";
  ASSERT_TRUE(scheduler_->Submit(kFive, "five.yaml", files_, false).ok());
  LeaseAndFail("a1", "boom");
  LeaseAndFail("a1", "boom");
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  Succeed("a1", **lease);
  LeaseAndFail("a1", "boom");
  LeaseAndFail("a1", "boom");
  auto still = scheduler_->QuarantineOf("a1");
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(*still, "");
}

TEST_F(SchedulerTest, ARunOutOfDeviceMemoryTriesEveryOtherLiveAgentBeforeFailing) {
  ASSERT_TRUE(scheduler_->RegisterAgent(Agent("a3")).ok());
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  // a3 goes silent for longer than a lease: it is lost and not waited for.
  clock_.Advance(6000);
  ASSERT_TRUE(scheduler_->Heartbeat("a1", 0, 0).ok());
  ASSERT_TRUE(scheduler_->Heartbeat("a2", 0, 0).ok());
  clock_.Advance(6000);

  auto first = scheduler_->Lease("a1");
  ASSERT_TRUE(first.ok() && first->has_value());
  const int64_t run_id = (*first)->run_id;
  RunOutcome oom{RunState::kFailed, "out of memory on cuda:0 at 2048 px", "a1's log\n", true};
  ASSERT_TRUE(scheduler_->Complete("a1", run_id, 1, oom).ok());
  EXPECT_EQ(store_->GetRun(run_id)->state, RunState::kQueued);
  // Not a1 again; a2 gets it.
  auto same = scheduler_->Lease("a1");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->has_value());
  auto second = scheduler_->Lease("a2");
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->run_id, run_id);
  EXPECT_EQ((*second)->attempt, 2);
  oom.log_tail = "a2's log\n";
  ASSERT_TRUE(scheduler_->Complete("a2", run_id, 2, oom).ok());

  // Every live agent tried: it fails for good, saying so.
  auto run = store_->GetRun(run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->state, RunState::kFailed);
  EXPECT_THAT(run->error, HasSubstr("out of device memory on every agent that could take it (a1, a2)"));
  EXPECT_EQ(run->log_tail, "a2's log\n");
  auto attempts = store_->ListAttempts(run_id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].log_tail, "a1's log\n");
  // Running out of memory is not the agents' fault: nobody is quarantined.
  auto views = scheduler_->ListAgents();
  ASSERT_TRUE(views.ok());
  for (const AgentView& view : *views) EXPECT_EQ(view.agent.consecutive_failures, 0) << view.agent.name;
  EXPECT_EQ((*views)[2].state, AgentState::kLost);
}

TEST_F(SchedulerTest, HeartbeatsShowWhatAnAgentIsDoing) {
  ASSERT_TRUE(scheduler_->Submit("content: cat.png\nstyle: starry.png\n", "one.yaml", files_, false).ok());
  auto lease = scheduler_->Lease("a1");
  ASSERT_TRUE(lease.ok() && lease->has_value());
  clock_.Advance(500);
  ASSERT_TRUE(scheduler_->Heartbeat("a1", AgentActivity{(*lease)->run_id, 1, 42, 300, 12.5, false}).ok());
  auto views = scheduler_->ListAgents();
  ASSERT_TRUE(views.ok());
  const AgentView& busy = (*views)[0];
  EXPECT_EQ(busy.state, AgentState::kBusy);
  EXPECT_EQ(busy.agent.run_id, (*lease)->run_id);
  EXPECT_EQ(busy.agent.step, 42);
  EXPECT_EQ(busy.agent.steps, 300);
  EXPECT_DOUBLE_EQ(busy.agent.steps_per_second, 12.5);
  ASSERT_TRUE(scheduler_->Heartbeat("a1", AgentActivity{(*lease)->run_id, 1, 43, 300, 12.5, true}).ok());
  EXPECT_EQ((*scheduler_->ListAgents())[0].state, AgentState::kDraining);
}

// Only the agent an attempt was leased to may act on it. Another registered
// agent, or a name that never registered, is refused every call and changes
// nothing: no rows, files, lease renewal, failure count or busy agent.
TEST_F(SchedulerTest, NobodyButTheHolderTouchesARun) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  const LeaseGrant grant = **scheduler_->Lease("a1");
  const RunRecord before = *store_->GetRun(grant.run_id);
  clock_.Advance(500);
  for (const std::string intruder : {"a2", "ghost"}) {
    SCOPED_TRACE(intruder);
    EXPECT_TRUE(absl::IsPermissionDenied(
        scheduler_->Heartbeat(intruder, AgentActivity{grant.run_id, grant.attempt, 1, 3, 1, false}).status()));
    EXPECT_TRUE(absl::IsPermissionDenied(
        scheduler_->ReportMetrics(intruder, grant.run_id, grant.attempt, {{0, 1, 1, 1, 3, 0}}).status()));
    EXPECT_TRUE(absl::IsPermissionDenied(
        scheduler_->UploadSnapshot(intruder, grant.run_id, grant.attempt, 1, true, Png("fake")).status()));
    EXPECT_TRUE(absl::IsPermissionDenied(
        scheduler_->Complete(intruder, grant.run_id, grant.attempt, RunState::kFailed, "sabotage")));
    EXPECT_TRUE(absl::IsPermissionDenied(scheduler_->Release(intruder, grant.run_id, grant.attempt, "mine now")));
    // An attempt that does not exist is nobody's either.
    EXPECT_TRUE(absl::IsPermissionDenied(scheduler_->Complete(intruder, grant.run_id, 7, RunState::kFailed, "x")));
  }
  const RunRecord after = *store_->GetRun(grant.run_id);
  EXPECT_EQ(after.state, RunState::kRunning);
  EXPECT_EQ(after.agent, "a1");
  EXPECT_EQ(after.lease_expires_ms, before.lease_expires_ms);
  EXPECT_EQ(after.last_step, -1);
  EXPECT_TRUE(store_->GetMetrics(grant.run_id, 0)->empty());
  EXPECT_TRUE(store_->ListSnapshots(grant.run_id)->empty());
  EXPECT_TRUE(SnapshotFiles().empty());
  const AgentRecord a2 = *store_->GetAgent("a2");
  EXPECT_EQ(a2.run_id, 0);
  EXPECT_EQ(a2.failures, 0);
  EXPECT_EQ(a2.runs_finished, 0);
  EXPECT_EQ(store_->GetAgent("a1")->failures, 0);
  EXPECT_TRUE(absl::IsNotFound(store_->GetAgent("ghost").status()));
}

TEST_F(SchedulerTest, RowsOutsideTheRunsStepsAreRefusedOneByOne) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());  // 3 steps
  const LeaseGrant grant = **scheduler_->Lease("a1");
  auto verdict = scheduler_->ReportMetrics(
      "a1", grant.run_id, grant.attempt,
      {{-1, 1, 1, 1, 3, 0}, {0, 1, 1, 1, 3, 0}, {2, 1, 1, 1, 2, 0}, {4, 1, 1, 1, 1, 0}, {2147483647, 1, 1, 1, 0, 0}});
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_EQ(verdict->directive, RunDirective::kContinue);
  EXPECT_EQ(verdict->refused_steps, (std::vector<int>{-1, 4, 2147483647}));
  auto rows = store_->GetMetrics(grant.run_id, 0);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].step, 2);
  EXPECT_EQ(store_->GetRun(grant.run_id)->last_step, 2);  // not the step it never ran
  auto snapshot = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 4, false, Png("4"));
  EXPECT_TRUE(absl::IsInvalidArgument(snapshot.status())) << snapshot.status();
  EXPECT_TRUE(SnapshotFiles().empty());
}

// The first NaN or infinite loss ends the run for good: its finite rows and
// latest image stay, it is the run's fault (no retry, no failure counted),
// and the rows after it are refused.
TEST_F(SchedulerTest, ANonFiniteLossEndsTheRunAsDivergedKeepingWhatCameBefore) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  const LeaseGrant grant = **scheduler_->Lease("a1");
  auto image = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, Png("step 1"));
  ASSERT_TRUE(image.ok()) << image.status();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto verdict = scheduler_->ReportMetrics(
      "a1", grant.run_id, grant.attempt,
      {{0, 1, 1, 1, 3, 0}, {1, 1, 1, 1, 2, 0}, {3, 1, 1, 1, 1, 0}, {2, 1, nan, 1, nan, nan}});
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_EQ(verdict->directive, RunDirective::kStop);
  EXPECT_EQ(verdict->refused_steps, (std::vector<int>{2, 3}));

  const RunRecord run = *store_->GetRun(grant.run_id);
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_EQ(run.diverged_step, 2);
  EXPECT_EQ(run.error, "diverged at step 2: total loss is NaN");
  EXPECT_EQ(run.last_step, 1);
  EXPECT_EQ(run.final_snapshot, *image);
  EXPECT_EQ(store_->GetMetrics(grant.run_id, 0)->size(), 2u);
  EXPECT_EQ(store_->GetAgent("a1")->failures, 0);
  EXPECT_EQ(store_->GetAgent("a1")->consecutive_failures, 0);
  // Not queued again: the next lease is the other run, then nothing.
  auto next = scheduler_->Lease("a2");
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_NE((*next)->run_id, grant.run_id);
  EXPECT_FALSE(scheduler_->Lease("a2")->has_value());
  // The agent's own report of the same divergence is a retry, not a conflict.
  RunOutcome diverged{RunState::kFailed, "diverged at step 2: total loss is NaN", "", false, 2};
  EXPECT_TRUE(scheduler_->Complete("a1", grant.run_id, grant.attempt, diverged).ok());
}

TEST_F(SchedulerTest, AnAgentsReportOfDivergenceEndsTheRunWithoutCountingAgainstIt) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  const LeaseGrant grant = **scheduler_->Lease("a1");
  ASSERT_TRUE(scheduler_->ReportMetrics("a1", grant.run_id, grant.attempt, {{0, 1, 1, 1, 3, 0}}).ok());
  ASSERT_TRUE(scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 0, true, Png("last finite")).ok());
  RunOutcome diverged{RunState::kFailed, "diverged at step 1: style loss is infinite", "", false, 1};
  EXPECT_TRUE(absl::IsInvalidArgument(
      scheduler_->Complete("a1", grant.run_id, grant.attempt, RunOutcome{RunState::kSucceeded, "", "", false, 1})));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(scheduler_->Complete("a1", grant.run_id, grant.attempt, diverged).ok());
  const RunRecord run = *store_->GetRun(grant.run_id);
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_EQ(run.diverged_step, 1);
  EXPECT_THAT(run.final_snapshot, HasSubstr("final.png"));
  const AgentRecord a1 = *store_->GetAgent("a1");
  EXPECT_EQ(a1.failures, 0);
  EXPECT_EQ(a1.runs_finished, 0);
}

TEST_F(SchedulerTest, SnapshotsArePngsAndAStoredOneIsNeverReplaced) {
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  const LeaseGrant grant = **scheduler_->Lease("a1");
  auto not_png = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, "GIF89a not a png at all");
  EXPECT_TRUE(absl::IsInvalidArgument(not_png.status())) << not_png.status();
  std::string bad_header = Png("x");
  bad_header[19] = bad_header[18] = bad_header[17] = bad_header[16] = 0;  // width 0
  EXPECT_TRUE(absl::IsInvalidArgument(
      scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, bad_header).status()));
  auto jpeg = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, testing::JpegDeclaring(4, 4));
  EXPECT_EQ(jpeg.status().message(), absl::StrCat("run ", grant.run_id, " step 1: a snapshot must be a PNG image, not a JPEG"));
  auto bomb = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, testing::PngDeclaring(15000, 15000));
  EXPECT_TRUE(absl::IsInvalidArgument(bomb.status())) << bomb.status();
  EXPECT_EQ(bomb.status().message(),
            absl::StrCat("run ", grant.run_id, " step 1: the snapshot declares 15000x15000 pixels (225000000); an "
                         "image may have at most 64 Mi pixels (67108864, e.g. 8192x8192)"));
  EXPECT_TRUE(SnapshotFiles().empty());
  EXPECT_TRUE(store_->ListSnapshots(grant.run_id)->empty());

  auto first = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, Png("one"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, Png("one"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  auto other = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, Png("two"));
  EXPECT_TRUE(absl::IsAlreadyExists(other.status())) << other.status();
  EXPECT_EQ(*ReadFileToString((dir_ / *first).string()), Png("one"));
  // The same image sent again as final marks the stored one final.
  auto final = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, true, Png("one"));
  ASSERT_TRUE(final.ok()) << final.status();
  EXPECT_EQ(*final, *first);
  auto snapshots = store_->ListSnapshots(grant.run_id);
  ASSERT_EQ(snapshots->size(), 1u);
  EXPECT_TRUE((*snapshots)[0].final);
  EXPECT_EQ(store_->GetRun(grant.run_id)->final_snapshot, *first);
  // Another final at another step would disagree with it.
  EXPECT_TRUE(absl::IsAlreadyExists(
      scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 2, true, Png("three")).status()));
  EXPECT_EQ(SnapshotFiles(), std::vector<std::string>{*first});
}

// Permission bits of `path`, or -1 when it cannot be examined.
int ModeOf(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Submitted images may be anything a user can read (even /etc/shadow):
// what the coordinator stores is the owner's alone, whatever the umask.
TEST_F(SchedulerTest, StoredImagesAndSnapshotsAreOwnerOnly) {
  const mode_t old_umask = ::umask(022);
  ASSERT_TRUE(scheduler_->Submit(kSweep, "tiny.yaml", files_, false).ok());
  const LeaseGrant grant = **scheduler_->Lease("a1");
  auto snapshot = scheduler_->UploadSnapshot("a1", grant.run_id, grant.attempt, 1, false, Png("one"));
  ::umask(old_umask);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();

  EXPECT_EQ(ModeOf(dir_), 0700);
  EXPECT_EQ(ModeOf(dir_ / "blobs"), 0700);
  EXPECT_EQ(ModeOf(dir_ / *snapshot), 0600);
  int blobs = 0;
  int snapshots = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) {
    const int want = entry.is_directory() ? 0700 : 0600;
    EXPECT_EQ(ModeOf(entry.path()), want) << entry.path();
    if (entry.is_regular_file()) {
      const bool blob = std::filesystem::relative(entry.path(), dir_).begin()->string() == "blobs";
      ++(blob ? blobs : snapshots);
    }
  }
  EXPECT_EQ(blobs, 2);      // the content and the style image
  EXPECT_EQ(snapshots, 1);  // under the sweep's directory
}

// Concurrent retries of one completion count once: the check of the holder,
// the run's end and the agent's counters are one transaction.
TEST_F(SchedulerTest, ConcurrentDuplicateCompletionsCountOnce) {
  scheduler_ = std::make_unique<Scheduler>(*store_, *artifacts_, clock_, SchedulerOptions{10000, 1000, kMaxGridSize, 0});
  constexpr char kTwenty[] = "content: cat.png\nstyle: starry.png\nparameters:\n  seed: {values: [1, 2, 3, 4, 5, 6, "
                             "7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}\n";
  ASSERT_TRUE(scheduler_->Submit(kTwenty, "twenty.yaml", files_, false).ok());
  for (int i = 0; i < 20; ++i) {
    const LeaseGrant grant = **scheduler_->Lease("a1");
    std::vector<std::thread> retries;
    for (int t = 0; t < 8; ++t) {
      retries.emplace_back([&] {
        EXPECT_TRUE(scheduler_->Complete("a1", grant.run_id, grant.attempt, RunState::kFailed, "boom").ok());
      });
    }
    for (std::thread& t : retries) t.join();
  }
  const AgentRecord a1 = *store_->GetAgent("a1");
  EXPECT_EQ(a1.failures, 20);
  EXPECT_EQ(a1.runs_finished, 20);
  EXPECT_EQ(a1.consecutive_failures, 20);
}

TEST_F(SchedulerTest, DeletingASweepRemovesItsRowsFilesAndUnsharedImages) {
  auto kept = scheduler_->Submit(kSweep, "tiny.yaml", files_, false);
  ASSERT_TRUE(kept.ok());
  auto files = files_;
  files["starry.png"] = Png("only the deleted sweep uses these bytes");
  auto doomed = scheduler_->Submit(kSweep, "tiny.yaml", files, false);
  ASSERT_TRUE(doomed.ok()) << doomed.status();
  const LeaseGrant first = **scheduler_->Lease("a1");
  ASSERT_EQ(first.sweep_id, kept->sweep.id);
  const LeaseGrant grant = **scheduler_->Lease("a2");
  ASSERT_EQ(grant.sweep_id, kept->sweep.id);
  ASSERT_TRUE(scheduler_->Lease("a1")->has_value());  // the doomed sweep's first run
  ASSERT_TRUE(scheduler_->ReportMetrics("a1", (*store_->ListRuns(doomed->sweep.id))[0].id, 1,
                                        {{0, 1, 1, 1, 3, 0}}).ok());
  ASSERT_TRUE(scheduler_->UploadSnapshot("a1", (*store_->ListRuns(doomed->sweep.id))[0].id, 1, 1, false,
                                         Png("doomed")).ok());

  auto refused = scheduler_->Delete(absl::StrCat(doomed->sweep.id), /*cancel_first=*/false);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("cancel"));
  ASSERT_TRUE(store_->GetSweep(doomed->sweep.id).ok());

  auto deleted = scheduler_->Delete(absl::StrCat(doomed->sweep.id), /*cancel_first=*/true);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->runs, 2);
  EXPECT_EQ(deleted->metric_rows, 1);
  EXPECT_EQ(deleted->blobs_removed, 1);
  for (const auto& folder : std::filesystem::directory_iterator(dir_ / "blobs")) {
    EXPECT_FALSE(std::filesystem::is_empty(folder.path())) << folder.path() << " is left empty";
  }
  EXPECT_GT(deleted->bytes_freed, 0);
  EXPECT_TRUE(absl::IsNotFound(store_->GetSweep(doomed->sweep.id).status()));
  EXPECT_FALSE(std::filesystem::exists(dir_ / ArtifactStore::SweepDir(doomed->sweep.id, "tiny")));
  // The image both sweeps use stays; the kept sweep is untouched.
  const auto images = nlohmann::json::parse(kept->sweep.spec_json)["images"];
  for (const auto& [id, name] : images.items()) EXPECT_TRUE(scheduler_->FetchBlob(id).ok()) << name;
  EXPECT_EQ(store_->ListRuns(kept->sweep.id)->size(), 2u);
  EXPECT_EQ(store_->GetRun(grant.run_id)->state, RunState::kRunning);
  EXPECT_TRUE(absl::IsNotFound(scheduler_->Delete(absl::StrCat(doomed->sweep.id), true).status()));
}

TEST_F(SchedulerTest, SubmissionsBeyondTheLimitsAreRefusedBeforeAnythingIsStored) {
  const std::string big_yaml = std::string(kSweep) + "# " + std::string(kMaxSweepYamlBytes, 'x') + "\n";
  auto yaml = scheduler_->Submit(big_yaml, "big.yaml", files_, false);
  EXPECT_TRUE(absl::IsInvalidArgument(yaml.status()));
  EXPECT_THAT(std::string(yaml.status().message()), AllOf(HasSubstr("big.yaml"), HasSubstr("1 MiB")));
  auto files = files_;
  files["cat.png"] = std::string(kMaxImageBytes + 1, 'c');
  auto image = scheduler_->Submit(kSweep, "tiny.yaml", files, false);
  EXPECT_TRUE(absl::IsInvalidArgument(image.status()));
  EXPECT_THAT(std::string(image.status().message()), AllOf(HasSubstr("cat.png"), HasSubstr("32 MiB")));
  EXPECT_TRUE(store_->ListSweeps()->empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "blobs"));
}

TEST_F(SchedulerTest, ASubmissionsReplyCarriesOnePageOfItsRuns) {
  std::string seeds;
  for (int i = 0; i < 1500; ++i) seeds += absl::StrCat(i == 0 ? "" : ", ", i);
  const std::string yaml = absl::StrCat("content: cat.png\nstyle: starry.png\nparameters:\n  seed: {values: [", seeds,
                                        "]}\n");
  for (bool dry_run : {true, false}) {
    auto result = scheduler_->Submit(yaml, "many.yaml", files_, dry_run);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->runs.size(), static_cast<size_t>(kSubmitReplyRuns));
    EXPECT_EQ(result->runs_total, 1500);
    EXPECT_EQ(result->totals.runs_by_state.at(RunState::kQueued), 1500);
  }
}

// A diverged run is the worst result a search has seen, not a missing one:
// at a rung, runs that diverged before it count below every run there.
TEST_F(SchedulerTest, EarlyTerminationRanksRunsThatDivergedBeforeTheRungLast) {
  constexpr char kFour[] = "content: cat.png\nstyle: starry.png\nsteps: 9\nmetric: {name: loss/total}\n"
                           "early_terminate: {type: hyperband, min_iter: 3, eta: 3}\n"
                           "parameters:\n  seed: {values: [1, 2, 3, 4]}\n";
  ASSERT_TRUE(scheduler_->Submit(kFour, "four.yaml", files_, false).ok());
  ASSERT_TRUE(scheduler_->RegisterAgent(Agent("a3")).ok());
  ASSERT_TRUE(scheduler_->RegisterAgent(Agent("a4")).ok());
  const LeaseGrant best = **scheduler_->Lease("a1");
  const LeaseGrant second = **scheduler_->Lease("a2");
  const LeaseGrant blew_up = **scheduler_->Lease("a3");
  const LeaseGrant also = **scheduler_->Lease("a4");
  const double inf = std::numeric_limits<double>::infinity();
  ASSERT_EQ(scheduler_->ReportMetrics("a3", blew_up.run_id, 1, {{0, 1, 1, 1, 9, 0}, {1, inf, 1, 1, inf, 0}})->directive,
            RunDirective::kStop);
  ASSERT_EQ(scheduler_->ReportMetrics("a4", also.run_id, 1, {{2, 1, 1, 1, inf, 0}})->directive, RunDirective::kStop);
  ASSERT_EQ(scheduler_->ReportMetrics("a1", best.run_id, 1, {{3, 1, 1, 1, 10, 0}})->directive,
            RunDirective::kContinue);
  // Four runs at the rung keep the best ceil(4 / 3) = 2: the second best
  // goes on. Counting only the two that got there would keep one, and prune it.
  auto at_rung = scheduler_->ReportMetrics("a2", second.run_id, 1, {{3, 1, 1, 1, 50, 0}});
  ASSERT_TRUE(at_rung.ok());
  EXPECT_EQ(at_rung->directive, RunDirective::kContinue);
}

}  // namespace
}  // namespace stylesweep

namespace stylesweep {
namespace {

// What a style transfer does as its style weight w grows, as a model: the
// image moves from the content (style_norm 1, content_norm 0) towards the
// style, with diminishing returns. The run's own losses are weighted by w,
// so loss/total grows with w whatever the image; the evaluation has its best
// balance (eval/score) near w = 1.
struct ModelRun {
  double style_norm, content_norm, total;
};
ModelRun TransferModel(double w) {
  const double a = w / (w + 1.0);
  ModelRun m;
  m.style_norm = 1 - 0.9 * a;
  m.content_norm = 0.8 * a * a;
  m.total = w * 100 * m.style_norm + 1e4 * 0.01 * m.content_norm;
  return m;
}

// Runs a bayes sweep over style_weight to its run_cap, one run at a time,
// each ending with the model's losses and evaluation; returns log10 of each
// run's style weight in proposal order.
std::vector<double> BayesProposals(Scheduler& scheduler, const std::map<std::string, std::string>& files,
                                   const std::string& metric) {
  const std::string yaml = absl::StrCat(R"(method: bayes
)", metric, R"(
run_cap: 36
max_concurrent: 1
search_seed: 7
content: cat.png
style: starry.png
steps: 4
parameters:
  style_weight: {min: 1.0e-3, max: 1.0e+3, distribution: log_uniform_values}
)");
  auto submitted = scheduler.Submit(yaml, "bayes.yaml", files, false);
  EXPECT_TRUE(submitted.ok()) << submitted.status();
  std::vector<double> proposals;
  for (int i = 0; i < 36; ++i) {
    auto lease = scheduler.Lease("a1");
    if (!lease.ok() || !lease->has_value()) {
      ADD_FAILURE() << "no run to lease at " << i;
      break;
    }
    const LeaseGrant& grant = **lease;
    const double w = nlohmann::json::parse(grant.params_json).at("style_weight").get<double>();
    proposals.push_back(std::log10(w));
    const ModelRun m = TransferModel(w);
    MetricRow row{4, 1e4 * 0.01 * m.content_norm, w * 100 * m.style_norm, 1, m.total, 0};
    Evaluation e;
    e.style = m.style_norm * 2;
    e.content = m.content_norm * 3;
    e.style_norm = m.style_norm;
    e.content_norm = m.content_norm;
    e.tv = e.tv_norm = e.color = 0.1;
    e.ssim = 1 - m.content_norm;
    row.eval = e;
    EXPECT_TRUE(scheduler.ReportMetrics("a1", grant.run_id, grant.attempt, {row}).ok());
    EXPECT_TRUE(scheduler.Complete("a1", grant.run_id, grant.attempt, RunState::kSucceeded, "").ok());
  }
  return proposals;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The proposals after the random start-up ones.
std::vector<double> Guided(const std::vector<double>& proposals) {
  return std::vector<double>(proposals.begin() + 16, proposals.end());
}

TEST_F(SchedulerTest, BayesOnTheDefaultMetricSettlesOnTheBalanceNotTheSmallestWeight) {
  const std::vector<double> by_loss = Guided(BayesProposals(*scheduler_, files_, "metric: {name: loss/total}"));
  const std::vector<double> by_score = Guided(BayesProposals(*scheduler_, files_, ""));
  auto lowest_decade = [](const std::vector<double>& v) {
    return std::count_if(v.begin(), v.end(), [](double x) { return x < -2; });
  };
  std::printf("guided proposals, log10 style_weight: loss/total median %.2f, %ld of %zu below 1e-2; "
              "eval/score median %.2f, %ld of %zu below 1e-2\n",
              Median(by_loss), static_cast<long>(lowest_decade(by_loss)), by_loss.size(), Median(by_score),
              static_cast<long>(lowest_decade(by_score)), by_score.size());
  // loss/total pulls the search to the smallest weights it may try...
  EXPECT_LT(Median(by_loss), -2) << ::testing::PrintToString(by_loss);
  EXPECT_GE(lowest_decade(by_loss), 12) << ::testing::PrintToString(by_loss);
  // ...eval/score to the model's balance near w = 1 (log10 0.11).
  EXPECT_NEAR(Median(by_score), 0.1, 1.0) << ::testing::PrintToString(by_score);
  EXPECT_LE(lowest_decade(by_score), 3) << ::testing::PrintToString(by_score);
}

TEST_F(SchedulerTest, BayesOnAParetoMetricSpreadsAlongTheFront) {
  // Every weight is on the model's front (style_norm falls as content_norm
  // rises), so a multi-objective search keeps proposing across the range
  // rather than converging on one end of it.
  const std::vector<double> proposals =
      Guided(BayesProposals(*scheduler_, files_, "metric: {pareto: [eval/style, eval/content]}"));
  const auto [low, high] = std::minmax_element(proposals.begin(), proposals.end());
  std::printf("guided proposals, log10 style_weight: %s\n", ::testing::PrintToString(proposals).c_str());
  EXPECT_GT(*high - *low, 3.0) << ::testing::PrintToString(proposals);
  const auto below = std::count_if(proposals.begin(), proposals.end(), [](double x) { return x < 0; });
  EXPECT_GE(below, 3) << ::testing::PrintToString(proposals);
  EXPECT_LE(below, static_cast<long>(proposals.size()) - 3) << ::testing::PrintToString(proposals);
}

}  // namespace
}  // namespace stylesweep
