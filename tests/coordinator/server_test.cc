#include "coordinator/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "tests/testing/grpc_health.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

CoordinatorConfig LoopbackConfig(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("stylesweep_server_" + name);
  std::filesystem::remove_all(dir);
  CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.db = ":memory:";
  config.artifacts = (dir / "artifacts").string();
  return config;
}

TEST(CoordinatorServerTest, BindsARandomPortOnLoopback) {
  auto server = CoordinatorServer::Start(LoopbackConfig("port"));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE((*server)->address(), "127.0.0.1:0");
}

// A signal thread and main may both shut the server down; whichever returns
// last must find it fully stopped, so destroying it right after is safe.
TEST(CoordinatorServerTest, ConcurrentShutdownsAllWaitUntilStopped) {
  for (int i = 0; i < 20; ++i) {
    auto server = CoordinatorServer::Start(LoopbackConfig("shutdown"));
    ASSERT_TRUE(server.ok()) << server.status();
    std::thread other([s = server->get()] { s->Shutdown(); });
    while (!(*server)->ShuttingDown()) std::this_thread::yield();
    (*server)->Shutdown();
    server->reset();  // Must not abort while `other` is still shutting down.
    other.join();
  }
}


// The standard health service answers for the whole server and for the
// coordinator's service, token or not (probes carry none).
TEST(CoordinatorServerTest, GrpcHealthCheckSaysServing) {
  CoordinatorConfig config = LoopbackConfig("health");
  config.security.token = "secret";
  auto server = CoordinatorServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(testing::CheckGrpcHealth((*server)->address(), ""), "SERVING");
  EXPECT_EQ(testing::CheckGrpcHealth((*server)->address(), "stylesweep.v1.Coordinator"), "SERVING");
  EXPECT_THAT(testing::CheckGrpcHealth((*server)->address(), "no.such.Service"), HasSubstr("error: 5"));  // NOT_FOUND
}

// With config.http the same process serves the probes and /metrics, and
// /metrics counts the gRPC calls it served.
TEST(CoordinatorServerTest, ServesHttpWhenAskedAndCountsGrpcCalls) {
  CoordinatorConfig config = LoopbackConfig("http");
  EXPECT_EQ(config.http, "");
  {
    auto without = CoordinatorServer::Start(config);
    ASSERT_TRUE(without.ok()) << without.status();
    EXPECT_EQ((*without)->http_address(), "");
  }
  config.http = "127.0.0.1:0";
  auto server = CoordinatorServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string http = (*server)->http_address();
  ASSERT_EQ(http.rfind("127.0.0.1:", 0), 0u) << http;
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(http.substr(http.rfind(':') + 1), &port));
  EXPECT_NE(port, 0);
  ASSERT_EQ(testing::CheckGrpcHealth((*server)->address(), ""), "SERVING");

  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5);
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr("stylesweep_rpc_duration_seconds_count{method=\"grpc.health.v1.Health/Check\",code=\"OK\"} 1\n"));
}

TEST(CoordinatorServerTest, RefusesAnExposedHttpAddressWithoutTlsAndToken) {
  CoordinatorConfig config = LoopbackConfig("exposed_http");
  config.http = "0.0.0.0:0";
  auto server = CoordinatorServer::Start(config);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("refusing to listen on 0.0.0.0:0"));
}

TEST(CoordinatorConfigTest, ReadsTheHttpAddress) {
  const auto path = std::filesystem::temp_directory_path() / "stylesweep_server_http_config.yaml";
  {
    std::ofstream out(path);
    out << "listen: 127.0.0.1:6000\nhttp: 127.0.0.1:8080\n";
  }
  CoordinatorConfig config;
  ASSERT_TRUE(LoadCoordinatorConfig(path.string(), config).ok());
  EXPECT_EQ(config.http, "127.0.0.1:8080");
  {
    std::ofstream out(path);
    out << "htp: 127.0.0.1:8080\n";
  }
  absl::Status typo = LoadCoordinatorConfig(path.string(), config);
  EXPECT_THAT(std::string(typo.message()), HasSubstr("did you mean 'http'?"));
}

}  // namespace
}  // namespace stylesweep
