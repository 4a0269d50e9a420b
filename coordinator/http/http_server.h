#ifndef STYLESWEEP_COORDINATOR_HTTP_HTTP_SERVER_H_
#define STYLESWEEP_COORDINATOR_HTTP_HTTP_SERVER_H_

// The coordinator's HTTP surface (`--http HOST:PORT`):
//   /                    the dashboard (one page, no outside resources)
//   /login               GET: a sign-in form; POST (form body token=, next=):
//                        starts a session (sessions.h) and redirects
//   /logout              POST: ends the session
//   /api/state           its JSON (dashboard_state.h), polled every 2 s
//   /api/snapshot/RUN    a run's latest snapshot PNG (?step=N: that step's)
//   /metrics             Prometheus text format (coordinator_metrics.h)
//   /healthz             200 while the process serves
//   /readyz              200 when the store answers and the coordinator is
//                        not shutting down, else 503
//
// Security follows the gRPC port's (rpc/transport.h): TLS with the same
// certificate and key when they are given, the same credentials and the same
// role table (coordinator/auth/roles.h): the probes and the sign-in page are
// public, every other path needs a user's or reader's credential, checked
// before a request's body is read. Scrapers and curl send "Authorization:
// Bearer TOKEN"; browsers post the token to /login, which sets an HttpOnly,
// SameSite=Strict cookie (Secure under TLS) naming a session that expires
// here after 12 h, and redirects to `next` when it is a path on this server,
// else to /. A token in a query string (?token=) is refused with 400 and
// sets nothing: browsers and proxies keep addresses.
//
// Slow and hostile clients are bounded (connection_limits.h, common/limits.h):
// a request's line and headers must arrive within kHttpHeadSeconds and
// kMaxHttpHeadBytes, a body over kMaxHttpBodyBytes is refused with 413 (one
// without Content-Length with 411) before it is read, and beyond
// kMaxHttpConnections open connections a new one is refused at once.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/auth/authenticator.h"
#include "coordinator/http/coordinator_metrics.h"
#include "coordinator/http/http_limits.h"
#include "coordinator/http/sessions.h"
#include "coordinator/store/store.h"
#include "rpc/transport.h"

namespace httplib {
class Server;
}

namespace stylesweep {

class ConnectionLimits;

// How long a dashboard sign-in lasts (a working day), and how many are kept
// at once.
inline constexpr int64_t kSessionLifetimeMs = 12 * 60 * 60 * 1000;
inline constexpr size_t kMaxSessions = 10000;

struct HttpOptions {
  std::string listen;       // HOST:PORT; port 0 picks a free one
  ServerSecurity security;  // shared with the gRPC port
  HttpLimits limits;        // defaults from common/limits.h
};

// What the pages read; every reference must outlive the server.
struct HttpSources {
  Store* store = nullptr;
  Authenticator* authenticator = nullptr;  // decides who may read what (roles.h)
  const CoordinatorMetrics* metrics = nullptr;
  const Clock* clock = nullptr;
  std::string artifacts_dir;         // snapshots are served from here, never from outside it
  std::string db_path;               // for the database size in /metrics
  int64_t agent_lost_after_ms = 0;   // the lease length
  double process_start_seconds = 0;  // since the Unix epoch
  std::function<bool()> shutting_down;  // /readyz answers 503 while true
};

// A running HTTP server: a thread accepting connections and a pool serving
// them, within HttpOptions::limits. Thread-safe.
class HttpServer {
 public:
  // Checks the security rule, loads the TLS files, binds (so connections are
  // accepted as soon as this returns) and starts serving. FailedPrecondition
  // for an exposed address without protection, InvalidArgument for TLS files
  // that do not load, Unavailable for an address that cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpOptions& options, HttpSources sources);
  ~HttpServer();

  // "host:port" as bound (the real port when 0 was asked for).
  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }
  // How often each limit in HttpOptions::limits was hit.
  ConnectionLimitCounts limit_counts() const;

  // Stops accepting and waits for requests in flight. Idempotent.
  void Shutdown();

 private:
  HttpServer() = default;
  void Route();

  HttpOptions options_;
  HttpSources sources_;
  SessionTable sessions_{kSessionLifetimeMs, kMaxSessions};
  std::string address_;
  bool tls_ = false;
  // Declared before server_, so that it outlives it.
  std::unique_ptr<ConnectionLimits> limits_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  std::once_flag shutdown_once_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_HTTP_SERVER_H_
