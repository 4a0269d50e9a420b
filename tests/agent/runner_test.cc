// The agent's work loop with a fake engine: against a real coordinator
// served in-process over loopback gRPC (the whole protocol, no torch, fast),
// and against a scripted in-memory coordinator for the answers a healthy
// coordinator rarely gives (refusals, a run that is not the agent's).

#include "agent/runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/engine/image_io.h"
#include "common/files.h"
#include "common/hash.h"
#include "coordinator/server.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "stylesweep/v1/coordinator.grpc.pb.h"
#include "tests/testing/crafted_images.h"
#include "tests/testing/fake_engine.h"

namespace stylesweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("runner_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  void StartServer(const std::string& token = "") {
    CoordinatorConfig config;
    config.listen = "127.0.0.1:0";
    config.db = (dir_ / "db.sqlite").string();
    config.artifacts = (dir_ / "artifacts").string();
    config.security.token = token;
    auto server = CoordinatorServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::unique_ptr<CoordinatorClient> Client(const std::string& token = "") {
    GrpcClientOptions options;
    options.security.token = token;
    options.retry_budget_ms = 2000;
    auto client = CreateGrpcCoordinatorClient(server_->address(), options);
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  int64_t Submit(const std::string& yaml, const std::map<std::string, std::string>& files) {
    auto result = server_->scheduler().Submit(yaml, "test.yaml", files, false);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->sweep.id : 0;
  }

  RunnerOptions Options(const std::string& name) {
    RunnerOptions options;
    options.identity = {name, "localhost", "cpu", "fake", "", 0, 1};
    options.cache_dir = (dir_ / ("cache-" + name)).string();
    return options;
  }

  std::filesystem::path dir_;
  std::unique_ptr<CoordinatorServer> server_;
};

const std::string kPng = testing::FakeEngine::FakePng(0);

// An engine that reports step 0, then fails with `status` (a device out of
// memory, a broken driver).
class FailingEngine final : public Engine {
 public:
  explicit FailingEngine(absl::Status status) : status_(std::move(status)) {}
  absl::Status Run(const RunParams& params, const EngineCallbacks& callbacks) override {
    if (callbacks.on_step) callbacks.on_step(StepMetrics{0, 1, 1, 1, 3, {}, 0});
    return status_;
  }
  std::string Describe() const override { return "failing engine"; }

 private:
  const absl::Status status_;
};

TEST_F(RunnerTest, ARunOutOfDeviceMemoryMovesToAnotherAgentWithTheLogTailKept) {
  StartServer();
  const int64_t sweep = Submit("content: c.png\nstyle: s.png\nsteps: 3\n", {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  auto client = Client();
  FailingEngine small_gpu(OutOfMemoryError("out of memory on cuda:0 at 4096 px"));
  testing::FakeEngine big_gpu;
  RunnerOptions small_options = Options("small");
  small_options.log_tail = [] { return std::string("[info] loading\n[error] CUDA out of memory\n"); };
  Runner small(*client, small_gpu, small_options);
  Runner big(*client, big_gpu, Options("big"));
  ASSERT_TRUE(small.Register().ok());
  ASSERT_TRUE(big.Register().ok());

  EXPECT_TRUE(*small.RunOne());
  EXPECT_FALSE(*small.RunOne());  // not given the same run again
  EXPECT_TRUE(*big.RunOne());

  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].state, RunState::kSucceeded);
  EXPECT_EQ((*runs)[0].agent, "big");
  auto attempts = server_->store().ListAttempts((*runs)[0].id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].state, RunState::kFailed);
  EXPECT_THAT((*attempts)[0].error, HasSubstr("out of device memory on agent 'small'"));
  EXPECT_EQ((*attempts)[0].log_tail, "[info] loading\n[error] CUDA out of memory\n");
  auto agents = server_->scheduler().ListAgents();
  ASSERT_TRUE(agents.ok());
  for (const AgentView& view : *agents) EXPECT_EQ(view.agent.consecutive_failures, 0) << view.agent.name;
}

// An image that declares more pixels than the limit (one stored before the
// coordinator checked) fails its run for good, naming the limit: it is the
// image's fault, so no other agent is given the run, and it is not taken for
// a device out of memory.
TEST_F(RunnerTest, AnImageOverThePixelLimitFailsTheRunWithoutRetryingElsewhere) {
  StartServer();
  const int64_t sweep = Submit("content: c.png\nstyle: s.png\nsteps: 3\n", {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  auto client = Client();
  const absl::Status decoded = DecodeImage(testing::PngDeclaring(15000, 15000), "c.png").status();
  ASSERT_TRUE(absl::IsInvalidArgument(decoded)) << decoded;
  FailingEngine decoding(absl::Status(decoded.code(), absl::StrCat("content image: ", decoded.message())));
  testing::FakeEngine other;
  Runner first(*client, decoding, Options("first"));
  Runner second(*client, other, Options("second"));
  ASSERT_TRUE(first.Register().ok());
  ASSERT_TRUE(second.Register().ok());

  EXPECT_TRUE(*first.RunOne());
  EXPECT_FALSE(*second.RunOne());  // nothing left to run

  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].state, RunState::kFailed);
  EXPECT_EQ((*runs)[0].error,
            "content image: image 'c.png' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi "
            "pixels (67108864, e.g. 8192x8192)");
  EXPECT_EQ(other.runs(), 0);
  auto attempts = server_->store().ListAttempts((*runs)[0].id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_THAT((*attempts)[0].error, ::testing::Not(HasSubstr("out of device memory")));
}

TEST_F(RunnerTest, AnAgentWhoseRunsKeepFailingIsQuarantinedAndToldSo) {
  StartServer();
  const int64_t sweep =
      Submit("content: c.png\nstyle: s.png\nsteps: 3\nparameters:\n  seed: {values: [1, 2, 3, 4]}\n",
             {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  auto client = Client();
  FailingEngine broken(absl::InternalError("style transfer failed: CUDA error: an illegal memory access"));
  Runner runner(*client, broken, Options("broken"));
  ASSERT_TRUE(runner.Register().ok());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(*runner.RunOne());
  EXPECT_FALSE(*runner.RunOne());  // quarantined: the fourth run waits for another agent

  auto reason = server_->scheduler().QuarantineOf("broken");
  ASSERT_TRUE(reason.ok());
  EXPECT_THAT(*reason, HasSubstr("3 runs in a row failed"));
  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ((*runs)[3].state, RunState::kQueued);

  ASSERT_TRUE(server_->scheduler().ReleaseAgent("broken").ok());
  EXPECT_TRUE(*runner.RunOne());
}

TEST_F(RunnerTest, RunsEverySweepRunAndRecordsLossesAndSnapshots) {
  StartServer();
  const int64_t sweep = Submit(
      "content: c.png\nstyle: s.png\nparameters:\n  style_weight: {values: [1, 2]}\n  steps: {value: 4}\n"
      "  snapshot_every: {value: 2}\n",
      {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  auto client = Client();
  testing::FakeEngine engine;
  Runner runner(*client, engine, Options("a1"));
  ASSERT_TRUE(runner.Register().ok());
  EXPECT_TRUE(*runner.RunOne());
  EXPECT_TRUE(*runner.RunOne());
  EXPECT_FALSE(*runner.RunOne());  // nothing left

  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  for (const RunRecord& run : *runs) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_EQ(run.agent, "a1");
    EXPECT_EQ(run.last_step, 4);
    auto metrics = server_->store().GetMetrics(run.id, 0);
    ASSERT_TRUE(metrics.ok());
    ASSERT_EQ(metrics->size(), 5u);  // steps 0..4
    for (int i = 0; i < 5; ++i) EXPECT_EQ((*metrics)[i].step, i);
    auto snapshots = server_->store().ListSnapshots(run.id);
    ASSERT_TRUE(snapshots.ok());
    ASSERT_EQ(snapshots->size(), 2u);  // step 2, and step 4 (final)
    ASSERT_FALSE(run.final_snapshot.empty());
    auto png = ReadFileToString((dir_ / "artifacts" / run.final_snapshot).string());
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(*png, testing::FakeEngine::FakePng(4));
  }
  // Images were fetched once and cached.
  EXPECT_EQ(std::distance(std::filesystem::recursive_directory_iterator(dir_ / "cache-a1"), {}), 3);  // blobs/ + 2
}

TEST_F(RunnerTest, AFailingRunIsRecordedAndTheSweepGoesOn) {
  StartServer();
  // bad.png is a JPEG by its header, which the coordinator accepts and the
  // fake engine, which reads only PNGs, cannot decode.
  const int64_t grid =
      Submit("style: s.png\nsteps: 2\nparameters:\n  content: {values: [bad.png, good.png]}\n",
             {{"bad.png", testing::JpegDeclaring(4, 4)}, {"good.png", kPng + "g"}, {"s.png", kPng + "s"}});
  auto client = Client();
  testing::FakeEngine engine;
  Runner runner(*client, engine, Options("a1"));
  ASSERT_TRUE(runner.Register().ok());
  while (*runner.RunOne()) {
  }
  auto runs = server_->store().ListRuns(grid);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].state, RunState::kFailed);
  // Named as the user wrote it, not by the agent's cached copy.
  EXPECT_THAT((*runs)[0].error, HasSubstr("cannot decode image 'bad.png'"));
  EXPECT_THAT((*runs)[0].error, ::testing::Not(HasSubstr("blobs/")));
  EXPECT_EQ((*runs)[1].state, RunState::kSucceeded);
}

TEST_F(RunnerTest, TokenIsRequiredWhenConfigured) {
  StartServer("s3cret");
  testing::FakeEngine engine;
  auto anonymous = Client();
  Runner without(*anonymous, engine, Options("a1"));
  absl::Status refused = without.Register();
  EXPECT_TRUE(absl::IsUnauthenticated(refused)) << refused;

  auto wrong = Client("guess");
  Runner guessing(*wrong, engine, Options("a2"));
  EXPECT_TRUE(absl::IsUnauthenticated(guessing.Register()));

  auto right = Client("s3cret");
  Runner with(*right, engine, Options("a3"));
  EXPECT_TRUE(with.Register().ok());
}

// A 27-point grid whose loss curves never cross (FakeEngine's synthetic
// objective), run by one agent: hyperband stops most runs at the early rungs
// (exactly there: the lease names the rungs and the agent reports right after
// each), a pruned run's final image is the one it stopped at, the best run
// still runs to the end, and the sweep says how many steps that saved.
TEST_F(RunnerTest, HyperbandPrunesMostOfAGridAndKeepsTheBestRun) {
  StartServer();
  const int64_t sweep = Submit(
      "content: c.png\nstyle: s.png\nsteps: 81\nsnapshot_every: 2\nmetric: {name: loss/total}\n"
      "early_terminate: {type: hyperband, min_iter: 3, eta: 3}\n"
      "parameters:\n"
      "  style_weight: {values: [1.0e-3, 1.0e-2, 1.0e-1]}\n"
      "  learning_rate: {values: [0.002, 0.02, 0.2]}\n"
      "  tv_weight: {values: [1, 10, 100]}\n",
      {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  auto client = Client();
  testing::FakeEngine engine(/*synthetic_objective=*/true);
  Runner runner(*client, engine, Options("a1"));
  ASSERT_TRUE(runner.Register().ok());
  while (*runner.RunOne()) {
  }

  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 27u);
  int64_t steps_run = 0;
  int pruned = 0;
  const RunRecord* best = nullptr;
  double best_floor = 1e300;
  for (const RunRecord& run : *runs) {
    auto params = RunParams::FromJson(nlohmann::json::parse(run.params_json));
    ASSERT_TRUE(params.ok());
    steps_run += run.last_step;
    const double floor = testing::FakeEngine::SyntheticFloor(*params);
    if (floor < best_floor) {
      best_floor = floor;
      best = &run;
    }
    ASSERT_TRUE(run.state == RunState::kSucceeded || run.state == RunState::kPruned) << run.error;
    // A pruned run keeps its losses up to the rung and its latest image.
    if (run.state == RunState::kPruned) {
      ++pruned;
      EXPECT_TRUE(run.last_step == 3 || run.last_step == 9 || run.last_step == 27) << run.last_step;
      ASSERT_FALSE(run.final_snapshot.empty());
      auto png = ReadFileToString((dir_ / "artifacts" / run.final_snapshot).string());
      ASSERT_TRUE(png.ok()) << png.status();
      EXPECT_EQ(*png, testing::FakeEngine::FakePng(run.last_step));  // snapshots are at even steps only
      auto metrics = server_->store().GetMetrics(run.id, 0);
      ASSERT_TRUE(metrics.ok());
      EXPECT_EQ(metrics->size(), static_cast<size_t>(run.last_step + 1));
    }
  }
  EXPECT_LT(steps_run, 27 * 81 / 2) << pruned << " runs pruned";
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->state, RunState::kSucceeded);
  EXPECT_EQ(best->last_step, 81);
  for (const RunRecord& run : *runs) {
    if (run.state == RunState::kSucceeded) {
      EXPECT_GE(run.total_loss, best->total_loss);
    }
  }

  // Compute saved reaches users through GetSweep.
  auto stub = v1::Coordinator::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetSweepRequest request;
  request.set_sweep(std::to_string(sweep));
  v1::GetSweepResponse response;
  ASSERT_TRUE(stub->GetSweep(&context, request, &response).ok());
  ASSERT_EQ(response.sweeps_size(), 1);
  EXPECT_EQ(response.sweeps(0).steps_run(), steps_run);
  EXPECT_EQ(response.sweeps(0).steps_saved(), 27 * 81 - steps_run);
  EXPECT_EQ(response.sweeps(0).runs_by_state().at("PRUNED"), pruned);
}

// A bayes sweep has no runs until agents ask: each lease proposes one, up to
// run_cap, from the results of the runs before it.
TEST_F(RunnerTest, BayesProposesRunsAsAgentsAskUpToRunCap) {
  StartServer();
  const int64_t sweep = Submit(
      "method: bayes\nrun_cap: 12\ncontent: c.png\nstyle: s.png\nsteps: 5\n"
      "parameters:\n"
      "  style_weight: {min: 1.0e-4, max: 1.0, distribution: log_uniform_values}\n"
      "  learning_rate: {min: 0.001, max: 0.5, distribution: log_uniform_values}\n",
      {{"c.png", kPng + "c"}, {"s.png", kPng + "s"}});
  EXPECT_TRUE(server_->store().ListRuns(sweep)->empty());
  auto client = Client();
  testing::FakeEngine engine(/*synthetic_objective=*/true);
  Runner runner(*client, engine, Options("a1"));
  ASSERT_TRUE(runner.Register().ok());
  int ran = 0;
  while (*runner.RunOne()) ++ran;
  EXPECT_EQ(ran, 12);
  auto runs = server_->store().ListRuns(sweep);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 12u);
  for (const RunRecord& run : *runs) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_FALSE(run.point_json.empty());
  }
  EXPECT_EQ(server_->store().GetSweep(sweep)->draws, 12);
}


// A coordinator in memory that hands out one run, serves its images, records
// every call about the run in order, and answers as the test scripts it.
// Heartbeats are an hour apart, so every call comes from the engine's
// thread or the end of the run, in an order the test can assert.
class ScriptedCoordinator final : public CoordinatorClient {
 public:
  // One call about the run, as the coordinator saw it.
  struct Call {
    std::string method;       // ReportMetrics, UploadSnapshot, Complete, Release, Heartbeat
    std::vector<int> steps;   // ReportMetrics: the rows' steps
    int step = -1;            // UploadSnapshot
    bool final = false;       // UploadSnapshot
    std::string png;          // UploadSnapshot
    RunEnd end;               // Complete
  };

  explicit ScriptedCoordinator(RunParams params) {
    params.ForEachImage([this](std::string& ref) {
      const std::string bytes = testing::FakeEngine::FakePng(0) + ref;
      ref = "sha256:" + Sha256Hex(bytes);
      blobs_[ref] = bytes;
    });
    lease_.run_id = 7;
    lease_.attempt = 1;
    lease_.sweep_id = 1;
    lease_.params = std::move(params);
  }

  // Scripts: each answers one call, given the calls about the run so far
  // (this one included, last). Unset: OK, carry on.
  std::function<absl::StatusOr<MetricsReply>(const Call&)> on_metrics;
  std::function<absl::Status(const Call&)> on_snapshot;
  std::function<absl::Status(const Call&)> on_complete;

  absl::StatusOr<AgentSettings> Register(const AgentIdentity&) override { return AgentSettings{3600 * 1000, 30000}; }

  absl::StatusOr<LeaseReply> Lease(const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (leased_) return LeaseReply{std::nullopt, ""};
    leased_ = true;
    return LeaseReply{lease_, ""};
  }

  absl::StatusOr<std::string> FetchBlob(const std::string& blob_id) override {
    auto it = blobs_.find(blob_id);
    if (it == blobs_.end()) return absl::NotFoundError(blob_id);
    return it->second;
  }

  absl::StatusOr<RunVerdict> Heartbeat(const std::string&, const RunProgress&) override {
    Record(Call{"Heartbeat"});
    return RunVerdict::kContinue;
  }

  absl::StatusOr<MetricsReply> ReportMetrics(const std::string&, int64_t run_id, int attempt,
                                             const std::vector<StepMetrics>& rows) override {
    Call call{"ReportMetrics"};
    for (const StepMetrics& m : rows) call.steps.push_back(m.step);
    Record(call);
    return on_metrics ? on_metrics(call) : MetricsReply{};
  }

  absl::Status UploadSnapshot(const std::string&, int64_t, int, int step, bool final,
                              const std::string& png) override {
    Call call{"UploadSnapshot"};
    call.step = step;
    call.final = final;
    call.png = png;
    Record(call);
    return on_snapshot ? on_snapshot(call) : absl::OkStatus();
  }

  absl::Status Complete(const std::string&, int64_t, int, const RunEnd& end) override {
    Call call{"Complete"};
    call.end = end;
    Record(call);
    return on_complete ? on_complete(call) : absl::OkStatus();
  }

  absl::Status Release(const std::string&, int64_t, int, const std::string&) override {
    Record(Call{"Release"});
    return absl::OkStatus();
  }

  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  // The calls in order, one word each: "metrics 0,1", "snapshot 2",
  // "snapshot 2 final", "complete FAILED", "release".
  std::vector<std::string> Transcript() {
    std::vector<std::string> lines;
    for (const Call& call : calls()) {
      if (call.method == "ReportMetrics") lines.push_back("metrics " + absl::StrJoin(call.steps, ","));
      if (call.method == "UploadSnapshot") {
        lines.push_back(absl::StrCat("snapshot ", call.step, call.final ? " final" : ""));
      }
      if (call.method == "Complete") lines.push_back("complete " + std::string(RunStateName(call.end.state)));
      if (call.method == "Release") lines.push_back("release");
    }
    return lines;
  }

  // Every row's step in the order sent (a step sent twice appears twice).
  std::vector<int> StepsSent() {
    std::vector<int> steps;
    for (const Call& call : calls()) steps.insert(steps.end(), call.steps.begin(), call.steps.end());
    return steps;
  }

 private:
  void Record(const Call& call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(call);
  }

  std::map<std::string, std::string> blobs_;
  std::mutex mu_;
  RunLease lease_;
  bool leased_ = false;
  std::vector<Call> calls_;
};

class RunnerOutcomeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("runner_outcome_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static RunParams Params(int steps, int snapshot_every) {
    RunParams params;
    params.content = "c.png";
    params.style = {"s.png"};
    params.steps = steps;
    params.snapshot_every = snapshot_every;
    return params;
  }

  // Leases and runs the scripted coordinator's one run.
  void RunTheRun(ScriptedCoordinator& coordinator, Engine& engine, int report_every_steps = 0) {
    RunnerOptions options;
    options.identity = {"a1", "localhost", "cpu", "fake", "", 0, 1};
    options.cache_dir = (dir_ / "cache").string();
    options.report_every_steps = report_every_steps;
    options.log_tail = [] { return std::string("[error] the last lines\n"); };
    Runner runner(coordinator, engine, options);
    ASSERT_TRUE(runner.Register().ok());
    absl::StatusOr<bool> ran = runner.RunOne();
    // The run's fate is not the agent's error: Serve goes on to the next.
    ASSERT_TRUE(ran.ok()) << ran.status();
    EXPECT_TRUE(*ran);
  }

  std::filesystem::path dir_;
};

bool Contains(const std::vector<int>& steps, int step) {
  return std::find(steps.begin(), steps.end(), step) != steps.end();
}

TEST_F(RunnerOutcomeTest, ADivergedRunSendsItsFiniteRowsAndLastImageThenFailsAsDiverged) {
  ScriptedCoordinator coordinator(Params(/*steps=*/6, /*snapshot_every=*/0));
  testing::FakeEngine engine;
  engine.DivergeAt(3);
  RunTheRun(coordinator, engine);

  // The engine hands over the image of step 2 as it diverges (sent as any
  // snapshot is); then the rows before the divergence, the same image as
  // the final one, and the end, in that order, so that the coordinator
  // keeps them all.
  EXPECT_THAT(coordinator.Transcript(),
              ElementsAre("snapshot 2", "metrics 0,1,2", "snapshot 2 final", "complete FAILED"));
  const std::vector<ScriptedCoordinator::Call> calls = coordinator.calls();
  EXPECT_EQ(calls[0].png, testing::FakeEngine::FakePng(2));
  EXPECT_EQ(calls[2].png, testing::FakeEngine::FakePng(2));
  const RunEnd& end = calls[3].end;
  EXPECT_EQ(end.error, "diverged at step 3: total loss is NaN");
  EXPECT_TRUE(end.diverged);
  EXPECT_EQ(end.diverged_step, 3);
  EXPECT_FALSE(end.out_of_memory);
  EXPECT_EQ(end.log_tail, "[error] the last lines\n");
}

TEST_F(RunnerOutcomeTest, ADivergedRunMarksItsLastScheduledSnapshotFinal) {
  ScriptedCoordinator coordinator(Params(/*steps=*/10, /*snapshot_every=*/2));
  testing::FakeEngine engine;
  engine.DivergeAt(5);
  RunTheRun(coordinator, engine, /*report_every_steps=*/2);

  // Step 4's snapshot went up as the run went; it is sent again as final
  // (the same bytes: the coordinator marks the stored one final).
  EXPECT_THAT(coordinator.Transcript(), ElementsAre("metrics 0", "metrics 1,2", "snapshot 2", "metrics 3,4",
                                                    "snapshot 4", "snapshot 4 final", "complete FAILED"));
  const std::vector<ScriptedCoordinator::Call> calls = coordinator.calls();
  EXPECT_EQ(calls[5].png, testing::FakeEngine::FakePng(4));
  EXPECT_TRUE(calls[6].end.diverged);
  EXPECT_EQ(calls[6].end.diverged_step, 5);
}

TEST_F(RunnerOutcomeTest, ARunDivergedAtItsFirstStepHasNoImage) {
  ScriptedCoordinator coordinator(Params(/*steps=*/4, /*snapshot_every=*/1));
  testing::FakeEngine engine;
  engine.DivergeAt(0);
  RunTheRun(coordinator, engine);

  EXPECT_THAT(coordinator.Transcript(), ElementsAre("complete FAILED"));
  const RunEnd end = coordinator.calls()[0].end;
  EXPECT_TRUE(end.diverged);
  EXPECT_EQ(end.diverged_step, 0);
  EXPECT_EQ(end.error, "diverged at step 0: total loss is NaN");
}

TEST_F(RunnerOutcomeTest, RefusedRowsAreDroppedAndNeverSentAgain) {
  ScriptedCoordinator coordinator(Params(/*steps=*/5, /*snapshot_every=*/0));
  coordinator.on_metrics = [](const ScriptedCoordinator::Call& call) -> absl::StatusOr<MetricsReply> {
    MetricsReply reply;
    for (int step : call.steps) {
      if (step == 2 || step == 3) reply.refused_steps.push_back(step);
    }
    return reply;
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine, /*report_every_steps=*/2);

  EXPECT_THAT(coordinator.StepsSent(), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(coordinator.Transcript().back(), "complete SUCCEEDED");
}

TEST_F(RunnerOutcomeTest, StopRunInAMetricsReplyStopsTheRunAndReportsNothingMore) {
  ScriptedCoordinator coordinator(Params(/*steps=*/50, /*snapshot_every=*/1));
  coordinator.on_metrics = [](const ScriptedCoordinator::Call& call) -> absl::StatusOr<MetricsReply> {
    MetricsReply reply;
    if (Contains(call.steps, 2)) reply.verdict = RunVerdict::kStop;
    return reply;
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine, /*report_every_steps=*/1);

  // Nothing after the reply that said stop: no more rows, images, end or
  // hand-back.
  EXPECT_THAT(coordinator.Transcript(),
              ElementsAre("metrics 0", "metrics 1", "snapshot 1", "metrics 2"));
}

TEST_F(RunnerOutcomeTest, PermissionDeniedOnMetricsStopsTheRunWithoutRetrying) {
  ScriptedCoordinator coordinator(Params(/*steps=*/50, /*snapshot_every=*/0));
  coordinator.on_metrics = [](const ScriptedCoordinator::Call& call) -> absl::StatusOr<MetricsReply> {
    if (Contains(call.steps, 3)) return absl::PermissionDeniedError("run 7 attempt 1 is not held by agent 'a1'");
    return MetricsReply{};
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine, /*report_every_steps=*/1);

  EXPECT_THAT(coordinator.Transcript(), ElementsAre("metrics 0", "metrics 1", "metrics 2", "metrics 3"));
}

TEST_F(RunnerOutcomeTest, PermissionDeniedOnASnapshotStopsTheRunWithoutRetrying) {
  ScriptedCoordinator coordinator(Params(/*steps=*/50, /*snapshot_every=*/2));
  coordinator.on_snapshot = [](const ScriptedCoordinator::Call&) {
    return absl::PermissionDeniedError("run 7 attempt 1 is not held by agent 'a1'");
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine);

  EXPECT_THAT(coordinator.Transcript(), ElementsAre("snapshot 2"));
}

TEST_F(RunnerOutcomeTest, PermissionDeniedOnCompleteIsNotRetried) {
  ScriptedCoordinator coordinator(Params(/*steps=*/3, /*snapshot_every=*/0));
  coordinator.on_complete = [](const ScriptedCoordinator::Call&) {
    return absl::PermissionDeniedError("run 7 attempt 1 is not held by agent 'a1'");
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine);

  EXPECT_THAT(coordinator.Transcript(), ElementsAre("snapshot 3 final", "metrics 0,1,2,3", "complete SUCCEEDED"));
}

TEST_F(RunnerOutcomeTest, ASnapshotTheCoordinatorRefusesIsDroppedAndTheRunGoesOn) {
  ScriptedCoordinator coordinator(Params(/*steps=*/6, /*snapshot_every=*/2));
  coordinator.on_snapshot = [](const ScriptedCoordinator::Call& call) {
    if (call.step == 2) return absl::AlreadyExistsError("other bytes are stored for step 2");
    if (call.step == 4) return absl::InvalidArgumentError("not a PNG");
    return absl::OkStatus();
  };
  testing::FakeEngine engine;
  RunTheRun(coordinator, engine);

  EXPECT_THAT(coordinator.Transcript(),
              ElementsAre("snapshot 2", "snapshot 4", "snapshot 6 final", "metrics 0,1,2,3,4,5,6", "complete SUCCEEDED"));
}
}  // namespace
}  // namespace stylesweep
