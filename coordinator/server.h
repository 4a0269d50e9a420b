#ifndef STYLESWEEP_COORDINATOR_SERVER_H_
#define STYLESWEEP_COORDINATOR_SERVER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/auth/authenticator.h"
#include "coordinator/http/coordinator_metrics.h"
#include "coordinator/http/http_server.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "rpc/transport.h"

namespace grpc {
class Server;
}

namespace stylesweep {

class CoordinatorService;

struct CoordinatorConfig {
  std::string listen = "127.0.0.1:50051";  // port 0: pick a free one
  // HOST:PORT for the dashboard, /metrics and the probes (http_server.h);
  // empty: no HTTP. Same security rules and settings as `listen`.
  std::string http;
  std::string db = "stylesweep.db";
  std::string artifacts = "artifacts";
  ServerSecurity security;
  SchedulerOptions scheduler;
};

// Reads a coordinator.yaml (keys: listen, http, db, artifacts, lease_seconds,
// heartbeat_seconds, tls_cert, tls_key, tls_client_ca, token_file, insecure) over `config`.
// Errors name the file, key and line.
absl::Status LoadCoordinatorConfig(const std::string& path, CoordinatorConfig& config);

// How long, at least, agents of runs left RUNNING by a previous coordinator
// on the same database have to report back after it starts again.
inline constexpr int64_t kRestartGraceMs = 15000;

// A running coordinator: the store, the artifacts, the scheduler, the gRPC
// server (with the standard health service, reporting SERVING until
// shutdown, and server reflection), the thread that expires leases, and,
// when asked, the HTTP server. Used by stylesweep-coordinator and,
// in-process, by `stylesweep local`. Thread-safe.
class CoordinatorServer {
 public:
  // Opens the database (applying migrations), binds the addresses and starts
  // serving. Fails if an address is taken or exposed without protection
  // (rpc/transport.h), or the database cannot be opened.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const CoordinatorConfig& config);
  ~CoordinatorServer();

  // "host:port" as bound (the real port when 0 was asked for).
  const std::string& address() const { return address_; }
  // The HTTP server's "host:port" as bound; empty without config.http.
  std::string http_address() const { return http_ ? http_->address() : ""; }
  Store& store() { return *store_; }
  Scheduler& scheduler() { return *scheduler_; }

  // Reports NOT_SERVING (gRPC health) and not ready (/readyz), stops
  // accepting calls, lets calls in flight finish (up to a few seconds).
  // Safe to call from several threads; every call returns once shutdown is
  // complete.
  void Shutdown();
  // True from the moment Shutdown() starts (readiness probes report it).
  bool ShuttingDown();

 private:
  CoordinatorServer() = default;
  void ReapLoop();

  CoordinatorConfig config_;
  std::string address_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CoordinatorService> service_;
  // Before the servers: they feed it until they are destroyed.
  CoordinatorMetrics metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;
  std::thread reaper_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool stopped_ = false;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_SERVER_H_
