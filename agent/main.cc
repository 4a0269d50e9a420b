// stylesweep-agent: runs style-transfer runs leased from a coordinator on one
// device (a GPU or the CPU).

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/client/coordinator_client.h"
#include "agent/device_info.h"
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
      "SIGTERM or SIGINT drains: no new runs, the run in progress finishes (or is handed back after\n"
      "--drain-timeout); a second signal stops at once and hands the run back, to run again elsewhere.\n\n"
      "Example:\n"
      "  stylesweep-agent --coordinator 127.0.0.1:50051 --device cpu --threads 2\n"
      "  stylesweep-agent --coordinator coord.example.org:50051 --tls --token-file token.txt --device cuda:0 \\\n"
      "      --weights vgg19-dcbb9e9d.pth\n"};
  std::string coordinator = "127.0.0.1:50051", device = "cpu", name, weights, cache_dir = DefaultCacheDir();
  std::string tls_ca, tls_cert, tls_key, token_file;
  bool tls = false;
  int threads = 0;
  double drain_timeout_seconds = -1;
  app.add_option("--coordinator", coordinator, "coordinator HOST:PORT")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda:N")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the engine (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--name", name, "unique agent name (default: HOST-DEVICE)");
  app.add_option("--weights", weights,
                 "VGG19 weights (torchvision .pth, dict or TorchScript); without it a seeded random network is used");
  app.add_option("--cache-dir", cache_dir, "where input images fetched from the coordinator are kept")
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout_seconds,
                 "on SIGTERM/SIGINT, give the run in progress this many seconds to finish before handing it back to "
                 "the coordinator (default: let it finish)");
  app.add_flag("--tls", tls, "connect with TLS");
  app.add_option("--tls-ca", tls_ca, "PEM root certificates for --tls (default: the system's)");
  app.add_option("--tls-cert", tls_cert,
                 "PEM client certificate, for a coordinator with --tls-client-ca: its common name is this agent's "
                 "--name");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  app.add_option("--token-file", token_file,
                 "file holding this host's agent token (`stylesweep tokens create NAME --role agent`), or set "
                 "STYLESWEEP_TOKEN");
  CLI11_PARSE(app, argc, argv);

  if (name.empty()) name = Hostname() + "-" + device;
  // The last lines of the log travel with a failed run (see RunnerOptions).
  auto recent_lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(40);
  recent_lines->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "stylesweep-agent", spdlog::sinks_init_list{std::make_shared<spdlog::sinks::stdout_color_sink_mt>(), recent_lines}));
  stylesweep::GrpcClientOptions client_options;
  client_options.security.tls = tls || !tls_ca.empty();
  client_options.security.tls_ca_file = tls_ca;
  client_options.security.tls_cert_file = tls_cert;
  client_options.security.tls_key_file = tls_key;
  if (!tls_cert.empty() || !tls_key.empty()) client_options.security.tls = true;
  auto token = stylesweep::LoadToken(token_file);
  if (!token.ok()) {
    spdlog::error("{}", std::string(token.status().message()));
    return 2;
  }
  client_options.security.token = *token;

  // First SIGTERM or SIGINT: drain (finish the run in progress, or hand it
  // back after --drain-timeout). A second: stop now and hand it back.
  // Static: the signal thread outlives main's locals.
  static std::mutex signal_mu;
  static stylesweep::Runner* running = nullptr;
  static int signals_seen = 0;
  static int64_t drain_timeout_ms = -1;
  if (drain_timeout_seconds >= 0) drain_timeout_ms = static_cast<int64_t>(drain_timeout_seconds * 1000);
  stylesweep::HandleTerminationSignals([](int signo) {
    std::lock_guard<std::mutex> lock(signal_mu);
    const char* name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (signals_seen++ == 0) {
      spdlog::info("received {}: draining: no new runs; the run in progress {}; {} again stops now and hands it back",
                   name,
                   drain_timeout_ms < 0 ? std::string("finishes first")
                                        : absl::StrCat("gets up to ", drain_timeout_ms / 1000.0,
                                                       " s to finish, then is handed back"),
                   name);
      if (running != nullptr) running->Drain(drain_timeout_ms);
    } else {
      spdlog::info("received {} again: stopping now; a run in progress is handed back", name);
      if (running != nullptr) running->Stop();
    }
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
  const stylesweep::DeviceInfo device_info = stylesweep::DescribeDevice(device);
  options.identity = {name, Hostname(), device, (*engine)->Describe(), device_info.name, device_info.memory_bytes, 1};
  options.log_tail = [recent_lines] {
    std::string tail;
    for (const std::string& line : recent_lines->last_formatted()) tail += line;
    return tail;
  };
  options.cache_dir = cache_dir;
  stylesweep::Runner runner(**client, **engine, options);
  {
    std::lock_guard<std::mutex> lock(signal_mu);
    running = &runner;
    // A signal that came while the engine loaded still counts.
    if (signals_seen == 1) runner.Drain(drain_timeout_ms);
    if (signals_seen > 1) runner.Stop();
  }
  absl::Status status = runner.Serve();
  {
    std::lock_guard<std::mutex> lock(signal_mu);
    running = nullptr;
  }
  if (!status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  return 0;
}
