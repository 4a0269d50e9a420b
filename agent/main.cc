// stylesweep-agent: runs style-transfer runs leased from a coordinator on one
// device (a GPU or the CPU).

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "agent/client/coordinator_client.h"
#include "agent/engine/engine.h"
#include "agent/runner.h"
#include "common/signals.h"

namespace {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string DefaultCacheDir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/stylesweep";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/stylesweep";
  return (std::filesystem::temp_directory_path() / "stylesweep-cache").string();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stylesweep-agent: takes runs from a coordinator and executes them on one device, streaming losses and "
      "snapshots back. Start one per GPU (or one for the CPU).\n\n"
      "Example:\n"
      "  stylesweep-agent --coordinator 127.0.0.1:50051 --device cpu --threads 2\n"
      "  stylesweep-agent --coordinator coord.example.org:50051 --tls --token-file token.txt --device cuda:0 \\\n"
      "      --weights vgg19-dcbb9e9d.pth\n"};
  std::string coordinator = "127.0.0.1:50051", device = "cpu", name, weights, cache_dir = DefaultCacheDir();
  std::string tls_ca, token_file;
  bool tls = false;
  int threads = 0;
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the engine (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--name", name, "unique agent name (default: HOST-DEVICE)");
  app.add_option("--weights", weights,
                 "VGG19 weights (torchvision .pth, dict or TorchScript); without it a seeded random network is used");
  app.add_option("--cache-dir", cache_dir, "where input images fetched from the coordinator are kept")
      ->capture_default_str();
  app.add_flag("--tls", tls, "connect with TLS");
  app.add_option("--tls-ca", tls_ca, "PEM root certificates for --tls (default: the system's)");
  app.add_option("--token-file", token_file, "file holding the coordinator's token (or set STYLESWEEP_TOKEN)");
  CLI11_PARSE(app, argc, argv);

  if (name.empty()) name = Hostname() + "-" + device;
  stylesweep::GrpcClientOptions client_options;
  client_options.security.tls = tls || !tls_ca.empty();
  client_options.security.tls_ca_file = tls_ca;
  auto token = stylesweep::LoadToken(token_file);
  if (!token.ok()) {
    spdlog::error("{}", std::string(token.status().message()));
    return 2;
  }
  client_options.security.token = *token;

  std::atomic<stylesweep::Runner*> running{nullptr};
  stylesweep::HandleTerminationSignals([&running](int signo) {
    spdlog::info("received {}: stopping; a run in progress will be retried elsewhere",
                 signo == SIGINT ? "SIGINT" : "SIGTERM");
    if (auto* runner = running.load()) runner->Stop();
  });

  stylesweep::EngineOptions engine_options;
  engine_options.device = device;
  engine_options.threads = threads;
  engine_options.weights_path = weights;
  auto engine = stylesweep::CreateTorchEngine(engine_options);
  if (!engine.ok()) {
    spdlog::error("{}", std::string(engine.status().message()));
    return 2;
  }
  auto client = stylesweep::CreateGrpcCoordinatorClient(coordinator, client_options);
  if (!client.ok()) {
    spdlog::error("{}", std::string(client.status().message()));
    return 2;
  }

  stylesweep::RunnerOptions options;
  options.identity = {name, Hostname(), device, (*engine)->Describe()};
  options.cache_dir = cache_dir;
  stylesweep::Runner runner(**client, **engine, options);
  running = &runner;
  absl::Status status = runner.Serve();
  running = nullptr;
  if (!status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  return 0;
}
