// Fault injection with the real binaries on loopback: agents and the
// coordinator are killed, stopped and starved of disk in the middle of
// sweeps, and every run must still finish exactly once with every recorded
// result intact. Runs are 32 px with enough steps (a few seconds) to be
// interrupted; leases are short so that losses are noticed quickly. Waits
// poll the database (read-only) for the state they need, never for time.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "common/files.h"
#include "coordinator/store/store.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using testing::RunCommand;
using testing::Subprocess;
using testing::WaitUntil;

namespace fs = std::filesystem;

constexpr int kWaitMs = 240000;

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_faults_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    bin_ = STYLESWEEP_BIN_DIR;
    images_ = fs::path(STYLESWEEP_SOURCE_DIR) / "configs" / "images";
    artifacts_ = dir_ / "artifacts";
  }

  void TearDown() override {
    agents_.clear();
    coordinator_.reset();
    if (mounted_) umount2(artifacts_.c_str(), MNT_DETACH);
  }

  // Starts the coordinator on `listen` (default: a free port) with a short
  // lease, and returns its address.
  std::string StartCoordinator(const std::string& listen = "127.0.0.1:0") {
    const std::string address_file = (dir_ / "address").string();
    fs::remove(address_file);
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{bin_ + "/stylesweep-coordinator", "--listen", listen, "--db", Db(), "--artifacts",
                                 artifacts_.string(), "--address-file", address_file, "--lease-seconds", "2",
                                 "--heartbeat-seconds", "0.25"},
        (dir_ / ("coordinator-" + std::to_string(++coordinator_starts_) + ".log")).string());
    EXPECT_TRUE(WaitUntil([&] { return fs::exists(address_file); }, 30000)) << coordinator_->Log();
    auto address = ReadFileToString(address_file);
    std::string a = address.ok() ? *address : "";
    while (!a.empty() && a.back() == '\n') a.pop_back();
    return a;
  }

  Subprocess& StartAgent(const std::string& address, const std::string& name) {
    agents_[name] = std::make_unique<Subprocess>(
        std::vector<std::string>{bin_ + "/stylesweep-agent", "--coordinator", address, "--threads", "1", "--name",
                                 name, "--cache-dir", (dir_ / ("cache-" + name)).string()},
        (dir_ / (name + ".log")).string());
    return *agents_[name];
  }

  // Submits a grid of `runs` runs (style_weight values) of `steps` steps;
  // `extra` is appended to the sweep's YAML.
  void Submit(const std::string& address, int runs, int steps, const std::string& extra = "") {
    const fs::path sweep = dir_ / "sweep.yaml";
    {
      std::ofstream out(sweep);
      out << "name: faults\n"
          << "content: " << (images_ / "cat.png").string() << "\n"
          << "style: " << (images_ / "starry_night.jpg").string() << "\n"
          << "image_size: 32\nsteps: " << steps << "\nsnapshot_every: " << steps / 2 << "\n"
          << "parameters:\n  style_weight: {values: [";
      for (int i = 0; i < runs; ++i) out << (i ? ", " : "") << 0.01 * (i + 1);
      out << "]}\n" << extra;
    }
    std::string output;
    ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images_.string(),
                          "--coordinator", address},
                         &output),
              0)
        << output;
  }

  std::string Db() const { return (dir_ / "sweeps.db").string(); }

  std::unique_ptr<Store> ReadOnlyStore() const {
    SqliteStoreOptions options;
    options.read_only = true;
    auto store = OpenSqliteStore(Db(), options);
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::vector<RunRecord> Runs() const {
    auto store = ReadOnlyStore();
    if (store == nullptr) return {};
    auto runs = store->ListRuns(1);
    return runs.ok() ? *runs : std::vector<RunRecord>{};
  }

  // Metric rows stored for a run's attempt.
  size_t Rows(int64_t run_id, int attempt) const {
    auto store = ReadOnlyStore();
    if (store == nullptr) return 0;
    auto rows = store->GetMetrics(run_id, attempt);
    return rows.ok() ? rows->size() : 0;
  }

  bool AllFinished(size_t expected) const {
    const std::vector<RunRecord> runs = Runs();
    if (runs.size() != expected) return false;
    for (const RunRecord& run : runs) {
      if (!IsTerminal(run.state)) return false;
    }
    return true;
  }

  std::string Logs() const {
    std::string logs = coordinator_ ? "coordinator:\n" + coordinator_->Log() : "";
    for (const auto& [name, agent] : agents_) logs += "\n" + name + ":\n" + agent->Log();
    return logs;
  }

  // Every run SUCCEEDED exactly once: one SUCCEEDED attempt, holding a
  // metric row for each step 0..steps, and one final image.
  void ExpectEveryRunSucceededOnce(int steps) {
    auto store = ReadOnlyStore();
    ASSERT_NE(store, nullptr);
    for (const RunRecord& run : Runs()) {
      EXPECT_EQ(run.state, RunState::kSucceeded) << "run " << run.id << ": " << run.error;
      auto attempts = store->ListAttempts(run.id);
      ASSERT_TRUE(attempts.ok());
      int succeeded = 0;
      for (const AttemptRecord& a : *attempts) {
        if (a.state == RunState::kSucceeded) {
          ++succeeded;
          auto rows = store->GetMetrics(run.id, a.attempt);
          ASSERT_TRUE(rows.ok());
          ASSERT_EQ(rows->size(), static_cast<size_t>(steps + 1)) << "run " << run.id;
          for (int step = 0; step <= steps; ++step) EXPECT_EQ((*rows)[step].step, step);
        }
      }
      EXPECT_EQ(succeeded, 1) << "run " << run.id;
      auto snapshots = store->ListSnapshots(run.id);
      ASSERT_TRUE(snapshots.ok());
      int finals = 0;
      for (const SnapshotRecord& s : *snapshots) finals += s.final ? 1 : 0;
      EXPECT_EQ(finals, 1) << "run " << run.id;
      EXPECT_TRUE(fs::exists(artifacts_ / run.final_snapshot)) << run.final_snapshot;
    }
  }

  fs::path dir_, images_, artifacts_;
  std::string bin_;
  std::unique_ptr<Subprocess> coordinator_;
  int coordinator_starts_ = 0;
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
  bool mounted_ = false;
};

// kill -9 an agent in the middle of a run: the lease runs out, the run is
// LOST under that attempt (its partial losses kept) and another agent
// finishes it.
TEST_F(FaultInjectionTest, AgentKilledMidRunIsFinishedByAnotherAgent) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  Submit(address, 1, 200);
  Subprocess& first = StartAgent(address, "first");
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 1) >= 20; }, kWaitMs)) << Logs();
  first.Signal(SIGKILL);
  first.Wait();
  const size_t partial = Rows(1, 1);

  StartAgent(address, "second");
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(1); }, kWaitMs)) << Logs();
  ExpectEveryRunSucceededOnce(200);
  auto store = ReadOnlyStore();
  auto attempts = store->ListAttempts(1);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].agent, "first");
  EXPECT_EQ((*attempts)[0].state, RunState::kLost);
  EXPECT_EQ((*attempts)[1].agent, "second");
  EXPECT_EQ((*attempts)[1].state, RunState::kSucceeded);
  EXPECT_EQ(Rows(1, 1), partial);  // the lost attempt's losses are kept
  EXPECT_GE(partial, 20u);
}

// kill -9 the coordinator in the middle of a sweep and start it again on the
// same database and port: the agent keeps running, buffers what it could not
// send, delivers it when the coordinator is back, and every run finishes
// exactly once.
TEST_F(FaultInjectionTest, CoordinatorKilledAndRestartedMidSweepLosesNothing) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  Submit(address, 3, 300);
  StartAgent(address, "agent");
  ASSERT_TRUE(WaitUntil([&] { return Rows(2, 1) >= 30; }, kWaitMs)) << Logs();
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  const std::vector<RunRecord> before = Runs();
  ASSERT_EQ(before.size(), 3u);
  EXPECT_EQ(before[0].state, RunState::kSucceeded);
  // The agent finishes the run alone (longer than a lease) and holds its
  // losses, snapshots and outcome.
  Subprocess& agent = *agents_["agent"];
  ASSERT_TRUE(WaitUntil([&] { return agent.Log().find("holding the results of run 2") != std::string::npos; },
                        kWaitMs))
      << Logs();

  ASSERT_EQ(StartCoordinator(address), address);
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(3); }, kWaitMs)) << Logs();
  ExpectEveryRunSucceededOnce(300);
  // The run in progress was neither lost nor repeated: the agent kept it.
  auto store = ReadOnlyStore();
  for (const RunRecord& run : Runs()) {
    auto attempts = store->ListAttempts(run.id);
    ASSERT_TRUE(attempts.ok());
    EXPECT_EQ(attempts->size(), 1u) << "run " << run.id << "\n" << Logs();
  }
  EXPECT_THAT(agent.Log(), HasSubstr("coordinator back: delivered the results of run 2"));
}

// SIGSTOP an agent for longer than its lease: its run is LOST and goes to
// another agent; when the first wakes up its late reports are refused, it
// drops the run, and nothing it sends lands in the new attempt.
TEST_F(FaultInjectionTest, StoppedAgentsLateReportsAreRefused) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  Submit(address, 1, 200);
  Subprocess& sleeper = StartAgent(address, "sleeper");
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 1) >= 20; }, kWaitMs)) << Logs();
  sleeper.Signal(SIGSTOP);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto store = ReadOnlyStore();
        if (store == nullptr) return false;
        auto attempts = store->ListAttempts(1);
        return attempts.ok() && !attempts->empty() && (*attempts)[0].state == RunState::kLost;
      },
      kWaitMs))
      << Logs();
  const size_t lost_rows = Rows(1, 1);
  StartAgent(address, "replacement");
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 2) >= 5; }, kWaitMs)) << Logs();
  sleeper.Signal(SIGCONT);
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(1); }, kWaitMs)) << Logs();
  ExpectEveryRunSucceededOnce(200);
  EXPECT_EQ(Rows(1, 1), lost_rows);  // the late reports were refused
  EXPECT_EQ(Runs()[0].agent, "replacement");
  EXPECT_TRUE(WaitUntil([&] { return sleeper.Log().find("no longer this agent's") != std::string::npos; }, kWaitMs))
      << sleeper.Log();
  EXPECT_TRUE(sleeper.Running());  // it goes on serving
}

// SIGTERM drains: the agent takes no new run, finishes the one in progress,
// delivers it and exits 0; the rest of the sweep stays queued.
TEST_F(FaultInjectionTest, SigtermDrainsTheRunInProgressThenExits) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  Submit(address, 2, 200);
  Subprocess& agent = StartAgent(address, "drained");
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 1) >= 10; }, kWaitMs)) << Logs();
  agent.Signal(SIGTERM);
  EXPECT_EQ(agent.Wait(), 0) << agent.Log();
  const std::vector<RunRecord> runs = Runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].state, RunState::kSucceeded) << runs[0].error;
  EXPECT_EQ(Rows(1, 1), 201u);
  EXPECT_EQ(runs[1].state, RunState::kQueued);
}

// With --drain-timeout the run in progress is handed back when the timeout
// passes, and a second SIGINT hands it back at once: either way the run is
// queued again immediately (no lease to wait out), its partial losses kept
// under a CANCELLED attempt that does not count against max_attempts, and
// another agent finishes it.
TEST_F(FaultInjectionTest, DrainTimeoutAndASecondSigintHandTheRunBack) {
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  Submit(address, 1, 400);
  agents_["timed"] = std::make_unique<Subprocess>(
      std::vector<std::string>{bin_ + "/stylesweep-agent", "--coordinator", address, "--threads", "1", "--name",
                               "timed", "--cache-dir", (dir_ / "cache-timed").string(), "--drain-timeout", "0.2"},
      (dir_ / "timed.log").string());
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 1) >= 10; }, kWaitMs)) << Logs();
  agents_["timed"]->Signal(SIGTERM);
  EXPECT_EQ(agents_["timed"]->Wait(), 0) << Logs();
  auto store = ReadOnlyStore();
  ASSERT_NE(store, nullptr);
  auto attempts = store->ListAttempts(1);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].state, RunState::kCancelled);
  EXPECT_THAT((*attempts)[0].error, HasSubstr("handed back by agent 'timed'"));
  EXPECT_EQ(Runs()[0].state, RunState::kQueued);
  const size_t kept = Rows(1, 1);
  EXPECT_GE(kept, 10u);

  Subprocess& interrupted = StartAgent(address, "interrupted");
  ASSERT_TRUE(WaitUntil([&] { return Rows(1, 2) >= 10; }, kWaitMs)) << Logs();
  interrupted.Signal(SIGINT);
  // Signals of one kind do not queue: the second must come after the first
  // was seen, as a second Ctrl-C does.
  ASSERT_TRUE(WaitUntil([&] { return interrupted.Log().find("received SIGINT") != std::string::npos; }, kWaitMs));
  interrupted.Signal(SIGINT);
  EXPECT_EQ(interrupted.Wait(), 0) << interrupted.Log();
  EXPECT_EQ(Runs()[0].state, RunState::kQueued);

  StartAgent(address, "finisher");
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(1); }, kWaitMs)) << Logs();
  ExpectEveryRunSucceededOnce(400);
  attempts = ReadOnlyStore()->ListAttempts(1);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_EQ((*attempts)[1].state, RunState::kCancelled);
  EXPECT_EQ((*attempts)[2].agent, "finisher");
  EXPECT_EQ(Rows(1, 1), kept);
}

// The artifacts directory fills up: the run fails with an error that says
// so, and the coordinator keeps serving (the next submission is accepted).
TEST_F(FaultInjectionTest, FullArtifactsDiskFailsTheRunClearlyAndTheCoordinatorGoesOn) {
  fs::create_directories(artifacts_);
  // Room for the two input images and little else.
  if (mount("stylesweep-test", artifacts_.c_str(), "tmpfs", 0, "size=160k") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << std::strerror(errno);
  }
  mounted_ = true;
  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  // Fill what is left after the images, once they are stored.
  Submit(address, 1, 40);
  {
    std::ofstream filler(artifacts_ / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  StartAgent(address, "agent");
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(1); }, kWaitMs)) << Logs();
  const RunRecord run = Runs()[0];
  EXPECT_EQ(run.state, RunState::kFailed);
  EXPECT_THAT(run.error, HasSubstr("No space left on device")) << run.error;

  fs::remove(artifacts_ / "filler");
  std::string output;
  EXPECT_EQ(RunCommand({bin_ + "/stylesweep", "status", "--coordinator", address}, &output), 0) << output;
  EXPECT_TRUE(coordinator_->Running());
}

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// The soak: 8 agents and a sweep, while agents and the coordinator are killed
// with SIGKILL at random moments and started again. Every run must end
// SUCCEEDED exactly once, and every attempt's metric rows must be exactly
// the steps it ran (0..n, none missing, none twice). Short by default, for
// CI; `ctest -L long` runs the long one (100 runs, more kills), and
// STYLESWEEP_SOAK_RUNS / _AGENTS / _SEED size and replay it by hand.
TEST_F(FaultInjectionTest, SoakRandomKillsOfAgentsAndCoordinator) {
  const int runs = EnvInt("STYLESWEEP_SOAK_RUNS", 16);
  const int agents = EnvInt("STYLESWEEP_SOAK_AGENTS", 8);
  const unsigned seed = static_cast<unsigned>(EnvInt("STYLESWEEP_SOAK_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  const int steps = 40;
  const int max_agent_kills = std::max(2, runs / 4);
  const int max_coordinator_kills = runs >= 100 ? 3 : 1;
  std::printf("soak: %d runs, %d agents, seed %u (STYLESWEEP_SOAK_SEED=%u replays the choices)\n", runs, agents, seed,
              seed);
  std::mt19937 rng(seed);

  const std::string address = StartCoordinator();
  ASSERT_FALSE(address.empty());
  // Kills may take a run from several agents in turn: allow for it.
  Submit(address, runs, steps, "max_attempts: 100\n");
  auto name = [](int i) { return "soak-" + std::to_string(i); };
  for (int i = 0; i < agents; ++i) StartAgent(address, name(i));

  int agent_kills = 0, coordinator_kills = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs * 3);
  while (!AllFinished(runs) && std::chrono::steady_clock::now() < deadline) {
    // Pacing between faults, not a wait for a result.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(500, 2500)(rng)));
    const int dice = std::uniform_int_distribution<int>(0, 5)(rng);
    if (dice == 0 && coordinator_kills < max_coordinator_kills) {
      coordinator_->Signal(SIGKILL);
      coordinator_->Wait();
      ++coordinator_kills;
      ASSERT_EQ(StartCoordinator(address), address) << Logs();
    } else if (dice <= 3 && agent_kills < max_agent_kills) {
      // An agent in the middle of a run: killing an idle one proves little.
      std::vector<std::string> busy;
      for (const RunRecord& run : Runs()) {
        if (run.state == RunState::kRunning && agents_.count(run.agent) != 0) busy.push_back(run.agent);
      }
      if (busy.empty()) continue;
      const std::string victim = busy[std::uniform_int_distribution<size_t>(0, busy.size() - 1)(rng)];
      agents_[victim]->Signal(SIGKILL);
      agents_[victim]->Wait();
      ++agent_kills;
      StartAgent(address, victim);
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return AllFinished(runs); }, kWaitMs)) << Logs();
  std::printf("soak: %d agent kills, %d coordinator kills\n", agent_kills, coordinator_kills);
  EXPECT_GT(agent_kills, 0);
  ExpectEveryRunSucceededOnce(steps);

  // Metric rows equal the steps run: each attempt holds steps 0..n once.
  auto store = ReadOnlyStore();
  ASSERT_NE(store, nullptr);
  int lost_attempts = 0;
  for (const RunRecord& run : Runs()) {
    auto attempts = store->ListAttempts(run.id);
    ASSERT_TRUE(attempts.ok());
    for (const AttemptRecord& a : *attempts) {
      lost_attempts += a.state == RunState::kLost ? 1 : 0;
      auto rows = store->GetMetrics(run.id, a.attempt);
      ASSERT_TRUE(rows.ok());
      for (size_t k = 0; k < rows->size(); ++k) {
        ASSERT_EQ((*rows)[k].step, static_cast<int>(k)) << "run " << run.id << " attempt " << a.attempt;
      }
    }
  }
  std::printf("soak: %d attempts lost to the kills, all re-run\n", lost_attempts);
  EXPECT_GT(lost_attempts, 0) << "no kill landed in the middle of a run";
}

}  // namespace
}  // namespace stylesweep
