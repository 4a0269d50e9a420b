// stylesweep-coordinator: keeps sweeps, runs and results in SQLite and hands
// runs to agents over gRPC.

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <future>

#include "common/files.h"
#include "common/signals.h"
#include "coordinator/server.h"

int main(int argc, char** argv) {
  using stylesweep::CoordinatorConfig;
  CLI::App app{
      "stylesweep-coordinator: expands submitted sweeps into runs, keeps every run and result in SQLite, and "
      "hands runs to agents over gRPC.\n\n"
      "Example:\n"
      "  stylesweep-coordinator --listen 127.0.0.1:50051 --db sweeps.db --artifacts artifacts/\n"
      "  stylesweep-coordinator --http 127.0.0.1:8080   # then open http://127.0.0.1:8080/\n"
      "  stylesweep-coordinator --config configs/coordinator.yaml\n"};
  CoordinatorConfig config;
  std::string config_file, listen, http, db, artifacts, tls_cert, tls_key, tls_client_ca, token_file, address_file,
      http_address_file;
  double lease_seconds = 0, heartbeat_seconds = 0;
  int quarantine_after = -1;
  bool insecure = false;
  app.add_option("--config", config_file, "YAML settings file; flags given on the command line win")
      ->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "HOST:PORT to serve gRPC on (default 127.0.0.1:50051; port 0 picks one)");
  app.add_option("--http", http,
                 "HOST:PORT to serve the dashboard, /metrics, /healthz and /readyz on (default: none; port 0 picks "
                 "one). Same TLS and token as --listen");
  app.add_option("--db", db, "SQLite database file (default stylesweep.db)");
  app.add_option("--artifacts", artifacts, "directory for input images and snapshots (default artifacts)");
  app.add_option("--lease-seconds", lease_seconds, "a run is LOST when its agent is silent this long (default 30)");
  app.add_option("--heartbeat-seconds", heartbeat_seconds, "how often agents heartbeat (default 2)");
  app.add_option("--quarantine-after", quarantine_after,
                 "quarantine an agent whose runs fail this many times in a row (default 3; 0: never); "
                 "`stylesweep agents --release NAME` lifts it")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve TLS");
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
  app.add_option("--tls-client-ca", tls_client_ca,
                 "PEM CA for mutual TLS: a client certificate it signed acts as the agent its subject's common name "
                 "names (needs --tls-cert and --tls-key)");
  app.add_option("--token-file", token_file,
                 "file whose first line is a shared token that may do anything (or set STYLESWEEP_TOKEN); "
                 "prefer scoped tokens: `stylesweep tokens create`");
  app.add_option("--address-file", address_file,
                 "once serving, write the bound HOST:PORT here (useful with port 0)");
  app.add_option("--http-address-file", http_address_file,
                 "once serving, write the bound HTTP HOST:PORT here (useful with --http HOST:0)");
  app.add_flag("--insecure", insecure,
               "allow listening beyond loopback without TLS and credentials (anyone who can reach it can use it)");
  CLI11_PARSE(app, argc, argv);

  if (!config_file.empty()) {
    if (absl::Status s = stylesweep::LoadCoordinatorConfig(config_file, config); !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
      return 2;
    }
  }
  if (!listen.empty()) config.listen = listen;
  if (!http.empty()) config.http = http;
  if (!http_address_file.empty() && config.http.empty()) {
    spdlog::error("--http-address-file needs --http");
    return 2;
  }
  if (!db.empty()) config.db = db;
  if (!artifacts.empty()) config.artifacts = artifacts;
  if (lease_seconds > 0) config.scheduler.lease_ms = static_cast<int64_t>(lease_seconds * 1000);
  if (heartbeat_seconds > 0) config.scheduler.heartbeat_ms = static_cast<int64_t>(heartbeat_seconds * 1000);
  if (quarantine_after >= 0) config.scheduler.quarantine_after = quarantine_after;
  if (!tls_cert.empty()) config.security.tls_cert_file = tls_cert;
  if (!tls_key.empty()) config.security.tls_key_file = tls_key;
  if (!tls_client_ca.empty()) config.security.tls_client_ca_file = tls_client_ca;
  if (insecure) config.security.insecure = true;
  if (!token_file.empty() || config.security.token.empty()) {
    auto token = stylesweep::LoadToken(token_file);
    if (!token.ok()) {
      spdlog::error("{}", std::string(token.status().message()));
      return 2;
    }
    if (!token->empty()) config.security.token = *token;
  }

  // The first SIGINT/SIGTERM asks main to shut down (it owns the server, so
  // it alone destroys it); a second one exits at once. Static: the signal
  // thread outlives main's locals.
  static std::promise<int> stop_requested;
  static std::atomic<int> signals_seen{0};
  std::future<int> stop = stop_requested.get_future();
  stylesweep::HandleTerminationSignals([](int signo) {
    if (signals_seen++ == 0) {
      stop_requested.set_value(signo);
    } else {
      spdlog::warn("second signal: exiting without waiting for calls in flight");
      std::_Exit(128 + signo);
    }
  });

  auto server = stylesweep::CoordinatorServer::Start(config);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  for (const auto& [file, address] : {std::pair{address_file, (*server)->address()},
                                      std::pair{http_address_file, (*server)->http_address()}}) {
    if (file.empty()) continue;
    if (absl::Status s = stylesweep::WriteFileAtomically(file, address + "\n"); !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
      return 1;
    }
  }
  const int signo = stop.get();
  spdlog::info("received {}, shutting down", signo == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Shutdown();
  spdlog::info("coordinator stopped");
  return 0;
}
