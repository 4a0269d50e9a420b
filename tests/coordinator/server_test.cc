#include "coordinator/server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

namespace stylesweep {
namespace {

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

}  // namespace
}  // namespace stylesweep
