#include "coordinator/http/connection_limits.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "coordinator/http/accepted_socket.h"

namespace stylesweep {

using Clock = std::chrono::steady_clock;

enum class Phase {
  kHead,      // waiting for a request line and headers; the head limits run
  kBody,      // reading a (bounded) body; the head limits still run
  kResponse,  // the request is being served or answered
  kLast,      // answered with its last response: no more bytes may arrive
  kRefused,   // over max_connections: shut down as it was accepted
  kClosing,   // shut down by a limit; httplib has yet to notice
};

struct ConnectionLimits::Connection {
  explicit Connection(AcceptedSocket accepted) : socket(std::move(accepted)) {}

  AcceptedSocket socket;
  Phase phase = Phase::kHead;
  Clock::time_point deadline;   // for kHead and kBody
  bool count_bytes = false;     // whether the kernel counts received bytes
  uint64_t bytes_at_start = 0;  // received before the head's clock started
  uint64_t bytes_allowed = 0;   // since then, before the connection is closed
  bool close_after_response = false;
};

namespace {

// The connection the calling worker serves: httplib runs a connection's
// requests, and so the handlers below, on the thread its task runs on.
thread_local ConnectionLimits::Connection* serving = nullptr;

// How often refusals over max_connections are logged, at most.
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);

// How long a connection answered with its last response (a refused body)
// stays open for the answer to reach the client, unless more bytes arrive.
constexpr auto kLastResponseGrace = std::chrono::seconds(1);

std::string Seconds(std::chrono::milliseconds duration) {
  return absl::FormatDuration(absl::Milliseconds(duration.count()));
}

// "from 127.0.0.1:5000" or "from 127.0.0.1:5000 and 3 more".
std::string FromPeers(const std::vector<std::string>& peers) {
  if (peers.size() == 1) return absl::StrCat("from ", peers[0]);
  return absl::StrCat("from ", peers[0], " and ", peers.size() - 1, " more");
}

void Answer(httplib::Response& response, int status, const std::string& text) {
  response.status = status;
  // The body may already be on its way; the next request cannot be told
  // from it, so this is the connection's last answer.
  response.set_header("Connection", "close");
  response.set_content(text + "\n", "text/plain; charset=utf-8");
}

// Whether httplib reads a body for this method (its expect_content()); for
// any other, body bytes would be read as the next request.
bool ReadsBody(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" || method == "PRI";
}

// Threads started as jobs need them, up to `max_threads`, kept until Join().
class WorkerPool {
 public:
  explicit WorkerPool(int max_threads) : max_threads_(std::max(1, max_threads)) {}
  ~WorkerPool() { Join(); }

  void Run(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
    if (jobs_.size() > idle_ && threads_.size() < static_cast<size_t>(max_threads_)) {
      threads_.emplace_back([this] { Work(); });
    }
    ready_.notify_one();
  }

  // Runs what is queued, then joins every thread. Idempotent.
  void Join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return !jobs_.empty() || stopping_; });
      --idle_;
      if (jobs_.empty()) return;
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  const int max_threads_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace

// httplib's task queue: each job is one accepted connection, served from
// start to close. Admits it, runs it on a worker (a refused one on a thread
// of its own, where it ends at once), and forgets it when it closes.
class ConnectionLimits::TaskQueue : public httplib::TaskQueue {
 public:
  explicit TaskQueue(ConnectionLimits& limits) : limits_(limits), workers_(limits.limits_.workers), closer_(1) {}

  void enqueue(std::function<void()> serve) override {
    auto [connection, refused] = limits_.Admit();
    auto job = [this, connection = connection, serve = std::move(serve)] {
      serving = connection.get();
      serve();
      serving = nullptr;
      if (connection != nullptr) limits_.Release(connection);
    };
    if (refused) {
      closer_.Run(std::move(job));
    } else {
      workers_.Run(std::move(job));
    }
  }

  void shutdown() override {
    limits_.CloseIdle();
    workers_.Join();
    closer_.Join();
  }

 private:
  ConnectionLimits& limits_;
  WorkerPool workers_;
  WorkerPool closer_;
};

ConnectionLimits::ConnectionLimits(HttpLimits limits, bool tls) : limits_(limits), tls_(tls) {
  watchdog_ = std::thread([this] { Watch(); });
}

ConnectionLimits::~ConnectionLimits() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  watchdog_.join();
}

void ConnectionLimits::Install(httplib::Server& server) {
  server.new_task_queue = [this] { return new TaskQueue(*this); };
  // For the listening socket. httplib's default sets SO_REUSEPORT, with
  // which a second server (another coordinator) binds the same port without
  // an error and takes a share of its connections; SO_REUSEADDR alone still
  // allows a restart while old connections linger in TIME_WAIT.
  server.set_socket_options([this](socket_t fd) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    std::lock_guard<std::mutex> lock(mutex_);
    listening_fd_ = fd;
  });
  server.set_read_timeout(limits_.read_timeout_seconds);
  server.set_write_timeout(limits_.write_timeout_seconds);
  server.set_keep_alive_timeout(limits_.keep_alive_seconds);
  // Guard() refuses a longer body first; this is httplib's own check of the
  // same limit.
  server.set_payload_max_length(limits_.max_body_bytes);
  // A client that asks before sending its body (Expect: 100-continue, as
  // curl does for a large one) hears the refusal instead of "100 Continue",
  // and sends nothing. httplib asks this before the pre-routing handler.
  server.set_expect_100_continue_handler([this](const httplib::Request& request, httplib::Response& response) {
    uint64_t length = 0;
    return RefuseBody(request, response, &length) ? response.status : 100;
  });
  // Called before a response is written, and after it is.
  server.set_post_routing_handler([this](const httplib::Request&, httplib::Response&) {
    if (serving != nullptr) Responding(*serving);
  });
  server.set_logger([this](const httplib::Request&, const httplib::Response&) {
    if (serving != nullptr) Responded(*serving);
  });
}

void ConnectionLimits::Listening(int port) {
  std::lock_guard<std::mutex> lock(mutex_);
  port_ = port;
  // httplib listens with a backlog of 5: a burst of connections beyond that
  // (a page's requests, a few probes) waits a second for TCP to retry. The
  // system's most instead; listen(2) again only changes the backlog.
  if (listening_fd_ >= 0) ::listen(listening_fd_, SOMAXCONN);
}

ConnectionLimitCounts ConnectionLimits::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

std::pair<std::shared_ptr<ConnectionLimits::Connection>, bool> ConnectionLimits::Admit() {
  std::unique_lock<std::mutex> lock(mutex_);
  absl::StatusOr<AcceptedSocket> accepted =
      FindAcceptedSocket(port_, [this](const std::string& endpoints) { return connections_.count(endpoints) > 0; });
  if (!accepted.ok()) {
    ++counts_.untracked;
    if (!untracked_logged_) {
      untracked_logged_ = true;
      lock.unlock();
      spdlog::warn("HTTP: serving a connection without its time and size limits: {}",
                   std::string(accepted.status().message()));
    }
    return {nullptr, false};
  }
  auto connection = std::make_shared<Connection>(*std::move(accepted));
  connections_.emplace(connection->socket.endpoints(), connection);
  if (served_ < limits_.max_connections) {
    ++served_;
    ArmHead(*connection, Clock::now(), /*at_accept=*/true);
    return {connection, false};
  }

  connection->phase = Phase::kRefused;
  const std::string why =
      absl::StrCat(limits_.max_connections, " connections were open, the limit on HTTP connections");
  if (!tls_) {
    const std::string text = absl::StrCat("this server is busy: ", why, "; try again shortly\n");
    connection->socket.TrySend(
        absl::StrCat("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n",
                     "Content-Length: ", text.size(), "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n", text));
  }
  connection->socket.Shutdown();
  ++counts_.refused;
  ++refused_unlogged_;
  const Clock::time_point now = Clock::now();
  if (now - refusal_logged_ >= kRefusalLogInterval) {
    const int64_t refused = refused_unlogged_;
    refused_unlogged_ = 0;
    refusal_logged_ = now;
    const std::string peer = connection->socket.peer();
    lock.unlock();
    spdlog::warn("HTTP: refused {} connection(s), the latest from {}: {}", refused, peer, why);
  }
  return {connection, true};
}

void ConnectionLimits::Release(const std::shared_ptr<Connection>& connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection->phase != Phase::kRefused) --served_;
  auto it = connections_.find(connection->socket.endpoints());
  if (it != connections_.end() && it->second == connection) connections_.erase(it);
  // Closed under the lock: Admit() must not meet this descriptor, no longer
  // known, and take it for a new connection.
  connection->socket.Close();
  connection->phase = Phase::kClosing;
}

void ConnectionLimits::ArmHead(Connection& connection, Clock::time_point from, bool at_accept) {
  connection.phase = Phase::kHead;
  connection.deadline = from + limits_.head_timeout;
  connection.bytes_allowed = limits_.max_head_bytes;
  connection.bytes_at_start = 0;
  connection.count_bytes = true;
  ++changes_;
  if (!at_accept) {
    // What arrived before now belongs to the requests already answered.
    absl::StatusOr<uint64_t> received = TcpBytesReceived(connection.socket.fd());
    connection.count_bytes = received.ok();
    if (received.ok()) connection.bytes_at_start = *received;
  }
  wake_.notify_one();
}

void ConnectionLimits::HeadArrived(Connection& connection, bool body_follows) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection.phase != Phase::kHead) return;
  if (body_follows) {
    connection.phase = Phase::kBody;
    connection.bytes_allowed += limits_.max_body_bytes;
  } else {
    connection.phase = Phase::kResponse;
  }
}

void ConnectionLimits::Responding(Connection& connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection.phase == Phase::kHead || connection.phase == Phase::kBody) connection.phase = Phase::kResponse;
}

void ConnectionLimits::Responded(Connection& connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (connection.phase != Phase::kResponse) return;
  if (connection.close_after_response) {
    // The answer, then end of file. A client still sending the body it was
    // refused (or anything else) is reset by the watchdog at once, and one
    // that keeps the connection open after the grace: left to httplib, the
    // unread body would be read as the next request's line, whole.
    connection.socket.FinishSending();
    connection.phase = Phase::kLast;
    connection.deadline = Clock::now() + kLastResponseGrace;
    absl::StatusOr<uint64_t> received = TcpBytesReceived(connection.socket.fd());
    connection.count_bytes = received.ok();
    connection.bytes_at_start = received.ok() ? *received : 0;
    connection.bytes_allowed = 0;
    ++changes_;
    wake_.notify_one();
    return;
  }
  // The next request may take the keep-alive time to begin.
  ArmHead(connection, Clock::now() + std::chrono::seconds(limits_.keep_alive_seconds), /*at_accept=*/false);
}

void ConnectionLimits::CloseIdle() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [endpoints, connection] : connections_) {
    if (connection->phase != Phase::kHead) continue;
    connection->socket.Shutdown();
    connection->phase = Phase::kClosing;
  }
}

bool ConnectionLimits::RefuseBody(const httplib::Request& request, httplib::Response& response, uint64_t* length_out) {
  const std::string limit = DescribeByteLimit(limits_.max_body_bytes);
  auto refuse = [&](int status, const std::string& text) {
    Connection* connection = serving;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++counts_.body_refused;
    }
    if (connection != nullptr) {
      // Answered without reading the body: the head limits no longer apply.
      HeadArrived(*connection, /*body_follows=*/false);
      std::lock_guard<std::mutex> lock(mutex_);
      connection->close_after_response = true;
    }
    Answer(response, status, text);
    return true;
  };
  if (request.has_header("Transfer-Encoding")) {
    return refuse(411, absl::StrCat("send the request body with a Content-Length (a body may be at most ", limit,
                                    "); Transfer-Encoding is not accepted"));
  }
  uint64_t length = 0;
  const size_t lengths = request.get_header_value_count("Content-Length");
  for (size_t i = 0; i < lengths; ++i) {
    uint64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(request.get_header_value("Content-Length", i)), &value) ||
        (i > 0 && value != length)) {
      return refuse(400, "Content-Length: expected one byte count");
    }
    length = value;
  }
  if (length > limits_.max_body_bytes) {
    return refuse(413, absl::StrCat("a request body may be at most ", limit, "; this one is ", length, " bytes"));
  }
  *length_out = length;
  return false;
}

httplib::Server::HandlerWithResponse ConnectionLimits::Guard(httplib::Server::HandlerWithResponse next) {
  return [this, next = std::move(next)](const httplib::Request& request, httplib::Response& response) {
    uint64_t length = 0;
    if (RefuseBody(request, response, &length)) return httplib::Server::HandlerResponse::Handled;
    const bool body_follows = length > 0 && ReadsBody(request.method);
    if (Connection* connection = serving; connection != nullptr) {
      HeadArrived(*connection, body_follows);
      if (length > 0 && !body_follows) {
        std::lock_guard<std::mutex> lock(mutex_);
        connection->close_after_response = true;
      }
    }
    return next ? next(request, response) : httplib::Server::HandlerResponse::Unhandled;
  };
}

void ConnectionLimits::Watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // What changed after this scan wakes the wait below, even if its notify
    // came while the lock was released to log.
    const uint64_t seen = changes_;
    const Clock::time_point now = Clock::now();
    bool watching = false;
    std::vector<std::string> too_slow, too_large;
    for (auto& [endpoints, connection] : connections_) {
      const Phase phase = connection->phase;
      if (phase != Phase::kHead && phase != Phase::kBody && phase != Phase::kLast) continue;
      bool over_time = now >= connection->deadline;
      bool over_size = false;
      if (!over_time && connection->count_bytes) {
        absl::StatusOr<uint64_t> received = TcpBytesReceived(connection->socket.fd());
        over_size = received.ok() && *received - connection->bytes_at_start > connection->bytes_allowed;
      }
      if (!over_time && !over_size) {
        watching = true;
        continue;
      }
      connection->socket.Abort();
      connection->phase = Phase::kClosing;
      if (phase == Phase::kLast) continue;  // its answer said why
      (over_time ? too_slow : too_large).push_back(connection->socket.peer());
    }
    counts_.head_too_slow += static_cast<int64_t>(too_slow.size());
    counts_.head_too_large += static_cast<int64_t>(too_large.size());
    if (!too_slow.empty() || !too_large.empty()) {
      lock.unlock();
      if (!too_slow.empty()) {
        spdlog::warn(
            "HTTP: closed {} connection(s) {}: the request line and headers did not arrive within {}, "
            "the limit on an HTTP request's head",
            too_slow.size(), FromPeers(too_slow), Seconds(limits_.head_timeout));
      }
      if (!too_large.empty()) {
        spdlog::warn(
            "HTTP: closed {} connection(s) {}: more than {} arrived without the end of the request's "
            "headers, the limit on an HTTP request's head",
            too_large.size(), FromPeers(too_large), DescribeByteLimit(limits_.max_head_bytes));
      }
      lock.lock();
    }
    // While a request is being read, look again soon (the byte count); else
    // sleep until a connection arrives or finishes a response.
    auto changed = [this, seen] { return stopping_ || changes_ != seen; };
    if (watching) {
      wake_.wait_for(lock, limits_.watchdog_interval, changed);
    } else {
      wake_.wait(lock, changed);
    }
  }
}

}  // namespace stylesweep
