// The coordinator's monitoring surfaces with the real binaries on loopback:
// a coordinator with --http on a free port and a token, one agent, and a
// one-run sweep long enough to stay RUNNING until the test cancels it. While
// it runs: the probes, /metrics as promtool reads it, the gRPC health
// service, and the dashboard in headless Chromium, logged in the way a user
// can be (/login#token=...: the login page posts it in a form). Waits poll with deadlines, never for time.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "tests/testing/grpc_health.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::Subprocess;
using testing::WaitUntil;

namespace fs = std::filesystem;

constexpr char kToken[] = "dashboard-test-token";
constexpr char kAgent[] = "dash-agent";
constexpr int kWaitMs = 60000;


class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_dashboard_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    bin_ = STYLESWEEP_BIN_DIR;
    const fs::path images = fs::path(STYLESWEEP_SOURCE_DIR) / "configs" / "images";
    token_file_ = (dir_ / "token").string();
    std::ofstream(token_file_) << kToken << "\n";

    const std::string address_file = (dir_ / "address").string();
    const std::string http_file = (dir_ / "http-address").string();
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--http",
                                 "127.0.0.1:0", "--db", (dir_ / "sweeps.db").string(), "--artifacts",
                                 (dir_ / "artifacts").string(), "--token-file", token_file_, "--address-file",
                                 address_file, "--http-address-file", http_file, "--heartbeat-seconds", "0.5"},
        (dir_ / "coordinator.log").string());
    ASSERT_TRUE(WaitUntil([&] { return fs::exists(address_file) && fs::exists(http_file); }, 30000))
        << coordinator_->Log();
    address_ = ReadLine(address_file);
    const std::string http = ReadLine(http_file);
    ASSERT_EQ(http.rfind("127.0.0.1:", 0), 0u) << http;
    ASSERT_TRUE(absl::SimpleAtoi(http.substr(http.rfind(':') + 1), &http_port_)) << http;

    // One run, far more steps than the test needs: it stays RUNNING until
    // TearDown cancels it. Snapshots come every few steps.
    const fs::path sweep = dir_ / "long.yaml";
    std::ofstream(sweep) << "name: long-run\n"
                         << "content: " << (images / "cat.png").string() << "\n"
                         << "style: " << (images / "starry_night.jpg").string() << "\n"
                         << "image_size: 32\nsteps: 1000000\nsnapshot_every: 10\n";
    std::string output;
    ASSERT_EQ(RunCommand({bin_ + "/stylesweep", "submit", sweep.string(), "--allow-dir", images.string(),
                          "--coordinator", address_, "--token-file", token_file_},
                         &output),
              0)
        << output;
    agent_ = std::make_unique<Subprocess>(
        std::vector<std::string>{bin_ + "/stylesweep-agent", "--coordinator", address_, "--token-file", token_file_,
                                 "--threads", "1", "--name", kAgent, "--cache-dir", (dir_ / "cache").string()},
        (dir_ / "agent.log").string());
  }

  void TearDown() override {
    if (agent_ == nullptr) return;
    std::string output;
    EXPECT_EQ(RunCommand({bin_ + "/stylesweep", "cancel", "long-run", "--coordinator", address_, "--token-file",
                          token_file_},
                         &output),
              0)
        << output;
    agent_->Signal(SIGTERM);
    EXPECT_EQ(agent_->Wait(), 0) << agent_->Log();
    coordinator_->Signal(SIGTERM);
    EXPECT_EQ(coordinator_->Wait(), 0) << coordinator_->Log();
  }

  static std::string ReadLine(const std::string& path) {
    auto text = ReadFileToString(path);
    std::string line = text.ok() ? *text : "";
    while (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
  }

  httplib::Client Client() const {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    client.set_bearer_token_auth(kToken);
    return client;
  }

  // Waits until the dashboard's state shows the agent running the run with a
  // snapshot stored; returns the run's id (0 on timeout).
  int64_t WaitForTheRunningRun() {
    int64_t run_id = 0;
    WaitUntil(
        [&] {
          auto response = Client().Get("/api/state");
          if (!response || response->status != 200) return false;
          const nlohmann::json state = nlohmann::json::parse(response->body, nullptr, false);
          if (!state.is_object()) return false;
          for (const nlohmann::json& run : state["running"]) {
            if (run["agent"] == kAgent && !run["snapshot"].is_null()) {
              run_id = run["run_id"].get<int64_t>();
              return true;
            }
          }
          return false;
        },
        kWaitMs);
    return run_id;
  }

  std::string Logs() const {
    return "coordinator:\n" + coordinator_->Log() + "\nagent:\n" + (agent_ ? agent_->Log() : "");
  }

  fs::path dir_;
  std::string bin_;
  std::string token_file_;
  std::string address_;
  int http_port_ = 0;
  std::unique_ptr<Subprocess> coordinator_;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(DashboardTest, ProbesMetricsAndGrpcHealthWhileARunRuns) {
  ASSERT_NE(WaitForTheRunningRun(), 0) << Logs();

  httplib::Client open("127.0.0.1", http_port_);  // no token: only the probes answer
  open.set_read_timeout(10);
  auto healthz = open.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  auto readyz = open.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  EXPECT_EQ(open.Get("/metrics")->status, 401);
  EXPECT_EQ(testing::CheckGrpcHealth(address_, ""), "SERVING");
  EXPECT_EQ(testing::CheckGrpcHealth(address_, "stylesweep.v1.Coordinator"), "SERVING");

  auto metrics = Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200) << metrics->body;
  const std::string& text = metrics->body;
  EXPECT_THAT(text, HasSubstr("stylesweep_agents{state=\"busy\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stylesweep_agents{state=\"idle\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("stylesweep_runs{state=\"RUNNING\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stylesweep_sweep_runs{sweep_id=\"1\",sweep=\"long-run\",state=\"RUNNING\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("stylesweep_rpc_duration_seconds_count{method=\"stylesweep.v1.Coordinator/LeaseRun\""));
  EXPECT_THAT(text, Not(HasSubstr("stylesweep_metric_rows_total 0\n")));
  EXPECT_THAT(text, Not(HasSubstr("stylesweep_snapshots_total 0\n")));
  EXPECT_THAT(text, Not(HasSubstr("stylesweep_database_size_bytes 0\n")));

  const std::string promtool = testing::FindProgram("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not installed (Debian package prometheus): not checked";
  const std::string scraped = (dir_ / "metrics.txt").string();
  std::ofstream(scraped) << text;
  std::string output;
  EXPECT_EQ(RunCommand({"/bin/sh", "-c", "'" + promtool + "' check metrics < '" + scraped + "'"}, &output), 0)
      << output << text;
}

TEST_F(DashboardTest, ChromiumShowsTheRunningAgentAndItsRun) {
  const int64_t run_id = WaitForTheRunningRun();
  ASSERT_NE(run_id, 0) << Logs();
  const std::string chromium = testing::FindProgram("chromium");
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian package chromium): not checked";

  // As a user can: the token in the login page's fragment (no server sees
  // it), which the page posts in its form; then the session cookie carries
  // the page's own requests.
  const std::string url = "http://127.0.0.1:" + std::to_string(http_port_) + "/login#token=" + kToken;
  std::string dom;
  const int status = RunCommand({testing::FindProgram("timeout"), "90", chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                 "--no-first-run", "--user-data-dir=" + (dir_ / "chromium").string(),
                                 "--virtual-time-budget=10000", "--dump-dom", url},
                                &dom);
  ASSERT_EQ(status, 0) << dom;
  EXPECT_THAT(dom, HasSubstr("<title>stylesweep</title>"));
  EXPECT_THAT(dom, HasSubstr("data-agent=\"" + std::string(kAgent) + "\""));
  EXPECT_THAT(dom, HasSubstr("data-run=\"" + std::to_string(run_id) + "\""));
  EXPECT_THAT(dom, HasSubstr("long-run · run 0"));
  EXPECT_THAT(dom, HasSubstr("<img src=\"/api/snapshot/" + std::to_string(run_id) + "?step="));
  // The page's own request for its data went through (its status line says
  // when it last updated, not an error).
  EXPECT_THAT(dom, HasSubstr("<span id=\"status\" class=\"\">updated "));
}

}  // namespace
}  // namespace stylesweep
