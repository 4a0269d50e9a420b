// Starts the real binaries on loopback: a coordinator on a free port, one
// agent with the real engine, and the CLI to submit a 2-run sweep at 32 px and
// 3 steps and to report on it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/evaluation.h"
#include "common/files.h"
#include "coordinator/store/store.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::Subprocess;
using testing::WaitUntil;

namespace fs = std::filesystem;

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_e2e_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    bin_ = STYLESWEEP_BIN_DIR;
    images_ = fs::path(STYLESWEEP_SOURCE_DIR) / "configs" / "images";
  }

  // Starts a coordinator on a free loopback port and returns its address.
  std::string StartCoordinator() {
    const std::string address_file = (dir_ / "address").string();
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--db",
                                 (dir_ / "sweeps.db").string(), "--artifacts", (dir_ / "artifacts").string(),
                                 "--address-file", address_file},
        (dir_ / "coordinator.log").string());
    EXPECT_TRUE(WaitUntil([&] { return fs::exists(address_file); }, 20000)) << coordinator_->Log();
    auto address = ReadFileToString(address_file);
    std::string a = address.ok() ? *address : "";
    while (!a.empty() && a.back() == '\n') a.pop_back();
    return a;
  }

  // Sweep 1's runs as the database holds them now (none while it cannot be read).
  std::vector<RunRecord> ReadRuns() const {
    SqliteStoreOptions options;
    options.read_only = true;
    auto store = OpenSqliteStore((dir_ / "sweeps.db").string(), options);
    if (!store.ok()) return {};
    auto runs = (*store)->ListRuns(1);
    return runs.ok() ? *runs : std::vector<RunRecord>{};
  }

  fs::path dir_;
  std::string bin_;
  fs::path images_;
  std::unique_ptr<Subprocess> coordinator_;
};

TEST_F(EndToEndTest, CoordinatorAgentAndCliRunASweep) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());

  const fs::path sweep = dir_ / "tiny.yaml";
  {
    std::ofstream out(sweep);
    out << "name: tiny\n"
        << "content: " << (images_ / "cat.png").string() << "\n"
        << "style: " << (images_ / "starry_night.jpg").string() << "\n"
        << "parameters:\n"
        << "  style_weight: {values: [0.01, 1.0]}\n"
        << "  steps: {value: 3}\n"
        << "  image_size: {value: 32}\n"
        << "  snapshot_every: {value: 2}\n";
  }
  std::string output;
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                        "--coordinator", address},
                       &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("2 runs queued"));

  Subprocess agent({bin_ + "/stylesweep-agent", "--coordinator", address, "--threads", "1", "--name", "e2e-agent",
                    "--cache-dir", (dir_ / "cache").string()},
                   (dir_ / "agent.log").string());

  auto finished = [&] {
    SqliteStoreOptions options;
    options.read_only = true;
    auto store = OpenSqliteStore((dir_ / "sweeps.db").string(), options);
    if (!store.ok()) return false;
    auto runs = (*store)->ListRuns(1);
    if (!runs.ok() || runs->size() != 2) return false;
    for (const RunRecord& run : *runs) {
      if (!IsTerminal(run.state)) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitUntil(finished, 240000)) << "agent log:\n" << agent.Log() << "\ncoordinator log:\n"
                                           << coordinator_->Log();

  SqliteStoreOptions read_only;
  read_only.read_only = true;
  auto store = OpenSqliteStore((dir_ / "sweeps.db").string(), read_only);
  ASSERT_TRUE(store.ok());
  auto runs = (*store)->ListRuns(1);
  ASSERT_TRUE(runs.ok());
  for (const RunRecord& run : *runs) {
    EXPECT_EQ(run.state, RunState::kSucceeded) << run.error;
    EXPECT_EQ(run.agent, "e2e-agent");
    auto metrics = (*store)->GetMetrics(run.id, 0);
    ASSERT_TRUE(metrics.ok());
    ASSERT_EQ(metrics->size(), 4u);  // steps 0..3
    for (const MetricRow& row : *metrics) {
      EXPECT_GT(row.total, 0);
      EXPECT_NEAR(row.total, row.content + row.style + row.tv, 1e-6 * row.total);
    }
    auto snapshots = (*store)->ListSnapshots(run.id);
    ASSERT_TRUE(snapshots.ok());
    ASSERT_EQ(snapshots->size(), 2u);  // step 2 and the final step 3
    for (const SnapshotRecord& snapshot : *snapshots) {
      auto png = ReadFileToString((dir_ / "artifacts" / snapshot.path).string());
      ASSERT_TRUE(png.ok()) << png.status();
      EXPECT_EQ(png->substr(0, 8), "\x89PNG\r\n\x1a\n");
    }
  }

  // The report, from the database file while the coordinator still runs.
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "report", "tiny", "--db", (dir_ / "sweeps.db").string()}, &output), 0)
      << output;
  EXPECT_THAT(output, HasSubstr("2 runs: 2 SUCCEEDED"));
  EXPECT_THAT(output, HasSubstr("style_weight"));
  EXPECT_THAT(output, HasSubstr("final.png"));
  // And the same from the coordinator.
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "status", "1", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("2 SUCCEEDED"));
  // The agent, its device and what it did; then a frame of `watch`, which
  // returns as the sweep has nothing left to run.
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "agents", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("e2e-agent"));
  EXPECT_THAT(output, HasSubstr("cpu "));   // the device, then its model name
  EXPECT_THAT(output, HasSubstr(" idle "));
  EXPECT_THAT(output, HasSubstr("0 in a row, 0 of 2"));
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "agents", "--json", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("\"memory_bytes\""));
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "watch", "tiny", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("2/2 done  2 SUCCEEDED"));
  EXPECT_THAT(output, HasSubstr("agents: 1 idle"));
  EXPECT_NE(RunCommand({bin_ + "/stylesweep", "agents", "--release", "nobody", "--coordinator", address}, &output), 0);
  EXPECT_THAT(output, HasSubstr("no agent named 'nobody'"));

  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(), 0) << agent.Log();
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->Log();
}

// cancel, pause, resume and retry through the CLI and the coordinator, each
// idempotent.
TEST_F(EndToEndTest, SweepControlCommands) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  const fs::path sweep = dir_ / "control.yaml";
  {
    std::ofstream out(sweep);
    out << "name: control\n"
        << "content: " << (images_ / "cat.png").string() << "\n"
        << "style: " << (images_ / "starry_night.jpg").string() << "\n"
        << "image_size: 32\nsteps: 3\n"
        << "parameters:\n  style_weight: {values: [0.01, 1.0]}\n";
  }
  std::string output;
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                        "--coordinator", address},
                       &output),
            0)
      << output;
  auto control = [&](std::vector<std::string> args) {
    args.insert(args.begin(), bin_ + "/stylesweep");
    args.push_back("--coordinator");
    args.push_back(address);
    std::string out;
    EXPECT_EQ(RunCommand(args, &out), 0) << out;
    return out;
  };
  EXPECT_THAT(control({"pause", "control"}), HasSubstr("sweep 1 'control' paused"));
  EXPECT_THAT(control({"pause", "1"}), HasSubstr("paused"));
  std::string listing;
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "status", "--coordinator", address}, &listing), 0) << listing;
  EXPECT_THAT(listing, HasSubstr("(paused)"));
  EXPECT_THAT(control({"resume", "control"}), HasSubstr("sweep 1 'control' resumed"));
  EXPECT_THAT(control({"retry", "control", "--failed"}), HasSubstr("0 failed or lost runs queued again"));
  EXPECT_THAT(control({"cancel", "control"}), HasSubstr("2 runs cancelled"));
  EXPECT_THAT(control({"cancel", "control"}), HasSubstr("0 runs cancelled"));
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "status", "control", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("2 CANCELLED"));
  EXPECT_NE(RunCommand({bin_ + "/stylesweep", "cancel", "no-such-sweep", "--coordinator", address}, &output), 0);
  EXPECT_THAT(output, HasSubstr("no-such-sweep"));
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->Log();
}

TEST_F(EndToEndTest, BadSweepIsRefusedWithFileKeyAndLineAndStoresNothing) {
  const std::string address = StartCoordinator();
  const fs::path sweep = dir_ / "bad.yaml";
  {
    std::ofstream out(sweep);
    out << "content: " << (images_ / "cat.png").string() << "\nstyle: missing-style.jpg\nsteps: 3\n";
  }
  std::string output;
  EXPECT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                        "--coordinator", address},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("bad.yaml:2: style: image 'missing-style.jpg'"));
  EXPECT_THAT(output, HasSubstr((dir_ / "missing-style.jpg").string()));

  {
    std::ofstream out(sweep);
    out << "content: " << (images_ / "cat.png").string() << "\nstyle: " << (images_ / "cat.png").string()
        << "\nparameters:\n  stpes: {value: 3}\n";
  }
  EXPECT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                        "--coordinator", address},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("bad.yaml:4:3: parameters.stpes: unknown key (did you mean 'steps'?)"));

  // Images from outside the sweep file's directory need --allow-dir.
  {
    std::ofstream out(sweep);
    out << "content: " << (images_ / "cat.png").string() << "\nstyle: " << (images_ / "cat.png").string()
        << "\nsteps: 3\n";
  }
  EXPECT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--coordinator", address}, &output), 2);
  EXPECT_THAT(output, HasSubstr(absl::StrCat("bad.yaml:1: content: image '", (images_ / "cat.png").string())));
  EXPECT_THAT(output, HasSubstr(absl::StrCat("is outside the sweep file's directory ", fs::canonical(dir_).string(),
                                             "; add --allow-dir DIR to allow another directory")));

  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "status", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("no sweeps yet"));
}

TEST_F(EndToEndTest, RefusesToListenBeyondLoopbackWithoutProtection) {
  std::string output;
  EXPECT_NE(RunCommand({bin_ + "/stylesweep-coordinator", "--listen", "0.0.0.0:0", "--db",
                        (dir_ / "x.db").string(), "--artifacts", (dir_ / "a").string()},
                       &output),
            0);
  EXPECT_THAT(output, HasSubstr("refusing to listen on 0.0.0.0:0 without TLS and credentials"));
}

// A sweep where one run diverges: L-BFGS with a content weight of 1e34 makes
// the loss NaN at its second step on this network at 32 px (Adam's steps are
// bounded by the learning rate and the image is clamped, so it does not blow
// up). The run ends FAILED as diverged, keeping its finite rows and its last
// finite image; the other run finishes; the agent is not blamed.
TEST_F(EndToEndTest, ARunThatDivergesKeepsItsFiniteLossesAndLastImage) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  const fs::path sweep = dir_ / "diverge.yaml";
  {
    std::ofstream out(sweep);
    out << "name: diverge\n"
        << "content: " << (images_ / "cat.png").string() << "\n"
        << "style: " << (images_ / "starry_night.jpg").string() << "\n"
        << "optimizer: lbfgs\nimage_size: 32\nsteps: 6\nstyle_weight: 1.0e4\n"
        << "parameters:\n  content_weight: {values: [1.0, 1.0e34]}\n";
  }
  std::string output;
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                        "--coordinator", address},
                       &output),
            0)
      << output;
  Subprocess agent({bin_ + "/stylesweep-agent", "--coordinator", address, "--threads", "1", "--name", "e2e-agent",
                    "--cache-dir", (dir_ / "cache").string()},
                   (dir_ / "agent.log").string());
  const std::string db = (dir_ / "sweeps.db").string();
  auto finished = [&] {
    const std::vector<RunRecord> runs = ReadRuns();
    return runs.size() == 2 && IsTerminal(runs[0].state) && IsTerminal(runs[1].state);
  };
  ASSERT_TRUE(WaitUntil(finished, 240000)) << "agent log:\n" << agent.Log() << "\ncoordinator log:\n"
                                           << coordinator_->Log();

  SqliteStoreOptions read_only;
  read_only.read_only = true;
  auto store = OpenSqliteStore(db, read_only);
  ASSERT_TRUE(store.ok());
  const std::vector<RunRecord> runs = *(*store)->ListRuns(1);
  const RunRecord& fine = runs[0];
  const RunRecord& diverged = runs[1];
  EXPECT_EQ(fine.state, RunState::kSucceeded) << fine.error;
  EXPECT_EQ(fine.last_step, 6);
  ASSERT_EQ(diverged.state, RunState::kFailed) << agent.Log();
  ASSERT_GT(diverged.diverged_step, 0) << diverged.error;
  EXPECT_THAT(diverged.error, HasSubstr(absl::StrCat("diverged at step ", diverged.diverged_step, ": ")));
  EXPECT_THAT(diverged.error, HasSubstr(" loss is "));
  EXPECT_EQ(diverged.attempt, 1) << "a diverged run is not tried again";
  // Every row before the divergence, all finite, and none after.
  auto metrics = (*store)->GetMetrics(diverged.id, 0);
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(static_cast<int>(metrics->size()), diverged.diverged_step);
  for (const MetricRow& row : *metrics) {
    EXPECT_LT(row.step, diverged.diverged_step);
    EXPECT_TRUE(std::isfinite(row.total) && std::isfinite(row.content) && std::isfinite(row.style)) << row.step;
  }
  EXPECT_EQ(diverged.last_step, diverged.diverged_step - 1);
  // Its final image is the last finite one, a PNG on disk that its record names.
  ASSERT_FALSE(diverged.final_snapshot.empty());
  auto snapshots = (*store)->ListSnapshots(diverged.id);
  ASSERT_TRUE(snapshots.ok());
  bool found = false;
  for (const SnapshotRecord& snapshot : *snapshots) {
    EXPECT_LT(snapshot.step, diverged.diverged_step);
    auto png = ReadFileToString((dir_ / "artifacts" / snapshot.path).string());
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->substr(0, 8), "\x89PNG\r\n\x1a\n");
    if (snapshot.final) {
      found = true;
      EXPECT_EQ(snapshot.path, diverged.final_snapshot);
      EXPECT_EQ(snapshot.step, diverged.diverged_step - 1);
    }
  }
  EXPECT_TRUE(found);
  // The run's fault, not the agent's.
  auto agents = (*store)->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].failures, 0);
  EXPECT_EQ((*agents)[0].quarantine_reason, "");

  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(), 0) << agent.Log();
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->Log();
}

// A real sweep over five log-spaced style weights (seeded random network,
// 48 px, 30 Adam steps): the evaluation metrics trace the trade-off the
// weight controls, eval/style falling and eval/content rising as it grows,
// while loss/total only grows with it. So every run is on the Pareto front,
// and eval/score, not loss/total, names an interior weight the best.
TEST_F(EndToEndTest, EvaluationMetricsTraceTheStyleContentTradeOff) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  auto write_sweep = [&](const std::string& name, const std::string& metric) {
    const fs::path sweep = dir_ / (name + ".yaml");
    std::ofstream out(sweep);
    out << "name: " << name << "\n"
        << metric << "content: " << (images_ / "cat.png").string() << "\n"
        << "style: " << (images_ / "starry_night.jpg").string() << "\n"
        << "content_weight: 1.0e3\ntv_weight: 0.1\nlearning_rate: 0.05\nsteps: 30\nimage_size: 48\n"
        << "eval_size: 48\nsnapshot_every: 15\n"
        << "parameters:\n  style_weight: {values: [3.0e1, 1.0e2, 3.0e2, 1.0e3, 3.0e3]}\n";
    return sweep.string();
  };
  std::string output;
  // Ranking these runs by their own losses is refused nothing, but warned.
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", write_sweep("by-loss", "metric: {name: loss/total}\n"),
                        "--dry-run", "--allow-dir", images_.string(), "--coordinator", address},
                       &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("warning: "));
  EXPECT_THAT(output, HasSubstr("loss/total"));
  EXPECT_THAT(output, HasSubstr("style_weight"));
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", write_sweep("tradeoff", ""), "--allow-dir",
                        images_.string(), "--coordinator", address},
                       &output),
            0)
      << output;
  EXPECT_THAT(output, Not(HasSubstr("warning")));

  Subprocess agent({bin_ + "/stylesweep-agent", "--coordinator", address, "--threads", "2", "--name", "e2e-agent",
                    "--cache-dir", (dir_ / "cache").string()},
                   (dir_ / "agent.log").string());
  const std::string db = (dir_ / "sweeps.db").string();
  auto finished = [&] {
    const std::vector<RunRecord> runs = ReadRuns();
    return runs.size() == 5 && std::all_of(runs.begin(), runs.end(), [](const RunRecord& r) { return IsTerminal(r.state); });
  };
  ASSERT_TRUE(WaitUntil(finished, 600000)) << "agent log:\n" << agent.Log() << "\ncoordinator log:\n"
                                           << coordinator_->Log();

  SqliteStoreOptions read_only;
  read_only.read_only = true;
  auto store = OpenSqliteStore(db, read_only);
  ASSERT_TRUE(store.ok());
  const std::vector<RunRecord> runs = *(*store)->ListRuns(1);  // in style_weight order
  for (const RunRecord& run : runs) {
    ASSERT_EQ(run.state, RunState::kSucceeded) << run.error;
    ASSERT_EQ(run.eval_step, 30) << "run #" << run.index;
    EXPECT_TRUE(CheckEvaluation(run.eval).ok());
    // Evaluated at step 0, at the snapshot and at the end, and nowhere else.
    std::vector<int> evaluated;
    for (const MetricRow& row : *(*store)->GetMetrics(run.id, 0)) {
      if (row.eval) evaluated.push_back(row.step);
    }
    EXPECT_EQ(evaluated, (std::vector<int>{0, 15, 30})) << "run #" << run.index;
  }
  std::string table;
  for (const RunRecord& run : runs) {
    absl::StrAppend(&table, "#", run.index, " eval/style ", run.eval.style, " eval/content ", run.eval.content,
                    " eval/score ", run.eval.score(), " loss/total ", run.total_loss, "\n");
  }
  for (size_t i = 1; i < runs.size(); ++i) {
    EXPECT_LT(runs[i].eval.style, runs[i - 1].eval.style) << table;
    EXPECT_GT(runs[i].eval.content, runs[i - 1].eval.content) << table;
    EXPECT_GT(runs[i].total_loss, runs[i - 1].total_loss) << table;
  }
  // The step-0 image is the content image itself: its normalised style is 1.
  const std::vector<MetricRow> first = *(*store)->GetMetrics(runs[0].id, 0);
  ASSERT_TRUE(first.front().eval.has_value());
  EXPECT_NEAR(first.front().eval->style_norm, 1.0, 1e-4);
  EXPECT_NEAR(first.front().eval->content, 0.0, 1e-6);

  // Every run is on the front; the best by eval/score is not the smallest
  // weight, which loss/total would have named.
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "report", "tradeoff", "--db", db, "--pareto"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("5 of 5 runs on the Pareto front")) << output;
  const auto best = std::min_element(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) {
    return a.eval.score() < b.eval.score();
  });
  EXPECT_NE(best->index, 0) << table;
  ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "status", "tradeoff", "--coordinator", address}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr(absl::StrCat("best:      run ", best->id, " (#", best->index, ") eval/score")))
      << output;
  EXPECT_THAT(output, HasSubstr("pareto front: runs #0, #1, #2, #3, #4")) << output;
  std::printf("%s", table.c_str());

  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(), 0) << agent.Log();
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->Log();
}

}  // namespace
}  // namespace stylesweep
