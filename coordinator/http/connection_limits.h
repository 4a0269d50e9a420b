#ifndef STYLESWEEP_COORDINATOR_HTTP_CONNECTION_LIMITS_H_
#define STYLESWEEP_COORDINATOR_HTTP_CONNECTION_LIMITS_H_

// What keeps the HTTP server answering while clients are slow or hostile.
// cpp-httplib serves each connection on one thread, blocking, and bounds only
// each single read and write; by itself a client sending a header line every
// few seconds holds a thread for ever, endless headers grow memory without
// bound, and a chunked body of any size is read whole. ConnectionLimits adds:
//   - a thread pool that grows to `workers` and a cap of `max_connections`,
//     beyond which a new connection is answered 503 at once (over TLS,
//     closed: a plaintext answer would be garbage to a TLS client);
//   - a deadline for each request's line and headers, counted from the
//     accept (so the TLS handshake too) or from the end of the last response
//     plus the keep-alive time, and a cap on the bytes received meanwhile: a
//     watchdog thread shuts the connection down when either is passed;
//   - a pre-routing guard that refuses a body over `max_body_bytes` (413) or
//     without Content-Length (411) before a byte of it is read, and closes
//     the connection after such an answer so the unread body is never taken
//     for the next request.
// Each limit is named in the answer or the log line when it is hit.
//
// Connections are followed by their server-side sockets, which httplib does
// not show its task queue: accepted_socket.h finds each as it is queued.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <httplib.h>

#include "coordinator/http/http_limits.h"

namespace stylesweep {

// One per httplib::Server, outliving it. Thread-safe.
class ConnectionLimits {
 public:
  ConnectionLimits(HttpLimits limits, bool tls);
  ~ConnectionLimits();
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // Sets `server`'s task queue, timeouts, payload limit, post-routing
  // handler and logger. Once, before it listens.
  void Install(httplib::Server& server);

  // The port `server` is bound to: connections are recognised by it. After
  // it binds, before it listens.
  void Listening(int port);

  // A pre-routing handler: refuses a body over the limit or without a
  // length, notes that the request's head arrived, then defers to `next`.
  httplib::Server::HandlerWithResponse Guard(httplib::Server::HandlerWithResponse next);

  ConnectionLimitCounts counts() const;

  // One open connection (opaque).
  struct Connection;

 private:
  class TaskQueue;

  // Called by TaskQueue as each connection is queued: the connection (null
  // when its socket cannot be found; it is then served without limits) and
  // whether it was refused.
  std::pair<std::shared_ptr<Connection>, bool> Admit();
  void Release(const std::shared_ptr<Connection>& connection);
  // Answers a request whose body is over the limit, without a length or
  // with a bad one, and returns true; else sets *length and returns false.
  bool RefuseBody(const httplib::Request& request, httplib::Response& response, uint64_t* length);
  void HeadArrived(Connection& connection, bool body_follows);
  void Responding(Connection& connection);
  void Responded(Connection& connection);
  // Shuts down every connection waiting for a request: none has one in
  // flight. For the server's shutdown.
  void CloseIdle();
  void Watch();
  // Starts the clock and the byte count for a request's head, from `from`.
  void ArmHead(Connection& connection, std::chrono::steady_clock::time_point from, bool at_accept);

  const HttpLimits limits_;
  const bool tls_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int listening_fd_ = -1;  // the last socket httplib created to listen on
  int port_ = -1;
  std::map<std::string, std::shared_ptr<Connection>> connections_;  // by endpoints
  int served_ = 0;                                                  // connections_ less those refused
  ConnectionLimitCounts counts_;
  int64_t refused_unlogged_ = 0;
  std::chrono::steady_clock::time_point refusal_logged_{};
  bool untracked_logged_ = false;
  bool stopping_ = false;
  // Counts the changes the watchdog must see (a connection armed or
  // finishing), so that none is missed between its scan and its wait.
  uint64_t changes_ = 0;
  std::thread watchdog_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_CONNECTION_LIMITS_H_
