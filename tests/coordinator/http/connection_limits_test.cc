// The HTTP server against slow and hostile clients, on loopback through raw
// sockets: request heads sent a line at a time, endless headers, bodies too
// large or without a length, and more connections than it keeps. Each limit
// is shortened through HttpOptions::limits, and every wait is generous
// against it: a test either sees the limit act or fails on a deadline many
// times the limit.

#include "coordinator/http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A TCP connection the test drives byte by byte.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    opened_ = Clock::now();
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  Clock::time_point opened() const { return opened_; }

  // False once the server has closed the connection.
  bool Send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // True when the server has closed its side (end of file or a reset)
  // without sending anything more; reads what it did send into *received.
  bool ClosedByServer(std::string* received = nullptr) {
    pollfd p{fd_, POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n <= 0) return true;
      if (received != nullptr) received->append(buffer, static_cast<size_t>(n));
    }
    return false;
  }

  // Everything the server sends until it closes, waiting at most `timeout`;
  // *closed says whether it did close.
  std::string ReadUntilClosed(std::chrono::seconds timeout, bool* closed) {
    std::string received;
    const Clock::time_point until = Clock::now() + timeout;
    *closed = false;
    while (Clock::now() < until) {
      pollfd p{fd_, POLLIN, 100};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      received.append(buffer, static_cast<size_t>(n));
    }
    return received;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  Clock::time_point opened_;
};

// Keeps `clients` dribbling: every 200 ms each open one sends `line()` (far
// quicker than any read timeout), until the server closes it. Records when.
class Dribbler {
 public:
  Dribbler(std::vector<std::unique_ptr<RawClient>>& clients, std::function<std::string(int)> line)
      : clients_(clients), closed_at_(clients.size()), line_(std::move(line)) {
    thread_ = std::thread([this] {
      for (int round = 0; !stop_; ++round) {
        for (size_t i = 0; i < clients_.size(); ++i) {
          if (closed_at_[i] != Clock::time_point{}) continue;
          if (clients_[i]->ClosedByServer() || !clients_[i]->Send(line_(round))) {
            closed_at_[i] = Clock::now();
            ++closed_;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  ~Dribbler() {
    stop_ = true;
    thread_.join();
  }

  int closed() const { return closed_; }
  // Read after closed() counts them all.
  Clock::time_point closed_at(size_t i) const { return closed_at_[i]; }

 private:
  std::vector<std::unique_ptr<RawClient>>& clients_;
  std::vector<Clock::time_point> closed_at_;
  std::function<std::string(int)> line_;
  std::atomic<int> closed_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string HeaderLine(int round) { return "X-Slow-" + std::to_string(round) + ": still coming\r\n"; }

class ConnectionLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stylesweep_limits_" + std::to_string(::getpid()) + "_" +
                                        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "artifacts");
    auto store = OpenSqliteStore((dir_ / "sweeps.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void Start(HttpOptions options) {
    options.listen = "127.0.0.1:0";
    authenticator_ = std::make_unique<Authenticator>(*store_, clock_, AuthSettings{options.security.token, true});
    HttpSources sources;
    sources.store = store_.get();
    sources.authenticator = authenticator_.get();
    sources.metrics = &metrics_;
    sources.clock = &clock_;
    sources.artifacts_dir = (dir_ / "artifacts").string();
    sources.db_path = (dir_ / "sweeps.db").string();
    sources.agent_lost_after_ms = 30000;
    sources.shutting_down = [] { return false; };
    auto server = HttpServer::Start(options, std::move(sources));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    const std::string& address = server_->address();
    ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port_)) << address;
  }

  std::vector<std::unique_ptr<RawClient>> Connect(int n, const std::string& first_bytes) {
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<RawClient>(port_));
      EXPECT_TRUE(clients.back()->connected());
      EXPECT_TRUE(clients.back()->Send(first_bytes));
    }
    return clients;
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
  CoordinatorMetrics metrics_;
  testing::FakeClock clock_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

constexpr int kSlowClients = 64;

TEST_F(ConnectionLimitsTest, ProbesAnswerWhileManyClientsSendHeadersALineAtATime) {
  HttpOptions options;
  options.limits.head_timeout = std::chrono::seconds(120);  // none is closed during this test
  Start(options);
  std::vector<std::unique_ptr<RawClient>> slow = Connect(kSlowClients, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  Dribbler dribbler(slow, HeaderLine);

  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(30);
  client.set_read_timeout(30);
  for (int i = 0; i < 5; ++i) {
    const Clock::time_point start = Clock::now();
    auto response = client.Get("/healthz");
    ASSERT_TRUE(response) << httplib::to_string(response.error());
    EXPECT_EQ(response->status, 200);
    std::cout << "GET /healthz with " << kSlowClients << " clients dribbling headers: "
              << std::chrono::duration<double, std::milli>(Clock::now() - start).count() << " ms\n";
  }
  EXPECT_EQ(dribbler.closed(), 0);
  EXPECT_EQ(server_->limit_counts().head_too_slow, 0);
}

TEST_F(ConnectionLimitsTest, HeadersSentALineAtATimeAreClosedAtTheDeadline) {
  HttpOptions options;
  options.limits.head_timeout = std::chrono::seconds(1);
  Start(options);
  std::vector<std::unique_ptr<RawClient>> slow = Connect(kSlowClients, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  Dribbler dribbler(slow, HeaderLine);
  // Each sends a line every 200 ms, well within the 5 s read timeout: only a
  // deadline on the whole head closes them.
  ASSERT_TRUE(testing::WaitUntil([&] { return dribbler.closed() == kSlowClients; }, 30000))
      << dribbler.closed() << " of " << kSlowClients << " closed";
  for (size_t i = 0; i < slow.size(); ++i) {
    // Accepted after it connected, so closed no sooner than 1 s after that.
    EXPECT_GE(dribbler.closed_at(i) - slow[i]->opened(), std::chrono::seconds(1)) << i;
  }
  EXPECT_EQ(server_->limit_counts().head_too_slow, kSlowClients);

  httplib::Client client("127.0.0.1", port_);
  auto response = client.Get("/healthz");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
}

TEST_F(ConnectionLimitsTest, TheNextRequestOnAKeptAliveConnectionHasADeadlineToo) {
  HttpOptions options;
  options.limits.head_timeout = std::chrono::seconds(1);
  options.limits.keep_alive_seconds = 1;
  Start(options);
  RawClient client(port_);
  ASSERT_TRUE(client.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string response;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        client.ClosedByServer(&response);
        return response.find("\r\n\r\nok\n") != std::string::npos;
      },
      30000))
      << response;
  // The next request, a line at a time.
  ASSERT_TRUE(client.Send("GET /healthz HTTP/1.1\r\n"));
  const Clock::time_point start = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    closed = client.ClosedByServer() || !client.Send(HeaderLine(0));
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(server_->limit_counts().head_too_slow, 1);
}

TEST_F(ConnectionLimitsTest, SlowTlsHandshakesAreClosedAtTheDeadlineAndHttpsProbesAnswer) {
  const std::string openssl = testing::FindProgram("openssl");
  if (openssl.empty()) GTEST_SKIP() << "openssl is not installed: cannot make a test certificate";
  const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
  std::string output;
  if (testing::RunCommand({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days",
                           "1", "-keyout", key, "-out", cert},
                          &output) != 0) {
    GTEST_SKIP() << "openssl cannot make a test certificate here: " << output;
  }
  HttpOptions options;
  options.security.tls_cert_file = cert;
  options.security.tls_key_file = key;
  options.limits.head_timeout = std::chrono::seconds(1);
  Start(options);
  ASSERT_TRUE(server_->tls());
  // The start of a TLS record (a handshake, TLS 1.0 framing, 512 bytes),
  // then one byte of it at a time.
  std::vector<std::unique_ptr<RawClient>> slow = Connect(16, std::string("\x16\x03\x01\x02\x00", 5));
  Dribbler dribbler(slow, [](int) { return std::string(1, '\x01'); });

  httplib::SSLClient client("127.0.0.1", port_);
  client.enable_server_certificate_verification(false);
  client.set_read_timeout(30);
  auto response = client.Get("/healthz");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);

  ASSERT_TRUE(testing::WaitUntil([&] { return dribbler.closed() == 16; }, 30000)) << dribbler.closed();
  for (size_t i = 0; i < slow.size(); ++i) {
    EXPECT_GE(dribbler.closed_at(i) - slow[i]->opened(), std::chrono::seconds(1)) << i;
  }
  EXPECT_EQ(server_->limit_counts().head_too_slow, 16);
}

TEST_F(ConnectionLimitsTest, EndlessHeadersAreClosedAfterTheHeadLimit) {
  HttpOptions options;
  Start(options);
  RawClient client(port_);
  ASSERT_TRUE(client.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  // 100 header lines of 1 KiB at a time, as fast as the server takes them.
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n";
  uint64_t sent = 0;
  constexpr uint64_t kGiveUpAfter = uint64_t{256} << 20;
  while (sent < kGiveUpAfter && client.Send(lines)) sent += lines.size();
  std::cout << "headers sent before the server closed the connection: " << sent << " bytes\n";
  // The limit is 64 KiB, checked every 50 ms: the connection closes long
  // before 256 MiB (without the limit, the server keeps every header).
  EXPECT_LT(sent, kGiveUpAfter);
  EXPECT_EQ(server_->limit_counts().head_too_large, 1);
}

// The server's own read and keep-alive timeouts are made long, so that a
// prompt close can only be the limit's.
HttpOptions Patient() {
  HttpOptions options;
  options.limits.read_timeout_seconds = 120;
  options.limits.keep_alive_seconds = 120;
  return options;
}

TEST_F(ConnectionLimitsTest, ABodyOverTheLimitIsRefusedBeforeItIsRead) {
  HttpOptions options = Patient();
  options.security.token = "s3cret";  // refused before authentication, on any path
  Start(options);
  for (const char* path : {"/healthz", "/login", "/api/state", "/no-such-page"}) {
    RawClient client(port_);
    // Headers only: the body never comes, so the answer cannot depend on it.
    ASSERT_TRUE(client.Send(std::string("POST ") + path +
                            " HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                            "Content-Length: 300000000\r\n\r\n"));
    bool closed = false;
    const std::string response = client.ReadUntilClosed(std::chrono::seconds(30), &closed);
    EXPECT_THAT(response, HasSubstr("HTTP/1.1 413")) << path;
    EXPECT_THAT(response, HasSubstr("a request body may be at most 16 KiB (16384 bytes); this one is 300000000 bytes"))
        << path;
    EXPECT_TRUE(closed) << path << ": the connection stays open, so the unread body would be read as a request";
  }
  EXPECT_EQ(server_->limit_counts().body_refused, 4);
}

TEST_F(ConnectionLimitsTest, AClientThatAsksFirstIsToldNotToSendTheBody) {
  Start(Patient());
  RawClient client(port_);
  // As curl asks before sending a large body.
  ASSERT_TRUE(
      client.Send("POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n"
                  "Expect: 100-continue\r\n\r\n"));
  bool closed = false;
  const std::string response = client.ReadUntilClosed(std::chrono::seconds(30), &closed);
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(response, HasSubstr("a request body may be at most 16 KiB (16384 bytes)"));
  EXPECT_THAT(response, ::testing::Not(HasSubstr("100 Continue")));
  EXPECT_TRUE(closed);
}

TEST_F(ConnectionLimitsTest, ABodySentAnywayIsNotRead) {
  Start(Patient());
  RawClient client(port_);
  ASSERT_TRUE(client.Send("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n"));
  // A client that sends its body without waiting for an answer: the server
  // answers 413 and resets the connection once more arrives, so the client
  // cannot send it (unlimited, httplib would read all 300 MB). Should the
  // body outrun the server's reading of the head, the head's byte limit
  // closes the connection instead.
  const std::string chunk(1 << 20, 'x');
  uint64_t sent = 0;
  while (sent < 300000000 && client.Send(chunk)) sent += chunk.size();
  std::cout << "body bytes the client could send: " << sent << "\n";
  EXPECT_LT(sent, uint64_t{64} << 20);
  const ConnectionLimitCounts counts = server_->limit_counts();
  EXPECT_EQ(counts.body_refused + counts.head_too_large, 1);
}

TEST_F(ConnectionLimitsTest, AChunkedBodyIsRefusedWhateverItsSize) {
  Start(Patient());
  RawClient client(port_);
  ASSERT_TRUE(client.Send("POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // The start of a first chunk of 1 MiB.
  ASSERT_TRUE(client.Send("100000\r\n" + std::string(8 * 1024, 'x')));
  bool closed = false;
  const std::string response = client.ReadUntilClosed(std::chrono::seconds(30), &closed);
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 411"));
  EXPECT_THAT(response, HasSubstr("send the request body with a Content-Length (a body may be at most 16 KiB"));
  EXPECT_TRUE(closed);
}

TEST_F(ConnectionLimitsTest, TheLoginFormStillWorksWithinTheLimit) {
  HttpOptions options;
  options.security.token = "s3cret";
  Start(options);
  httplib::Client client("127.0.0.1", port_);
  auto response = client.Post("/login", "token=s3cret&next=%2F", "application/x-www-form-urlencoded");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 303);
  EXPECT_THAT(response->get_header_value("Set-Cookie"), HasSubstr("stylesweep_session="));
  // A body just over the limit, with a valid token in it, is refused all the same.
  const std::string padded = "token=s3cret&next=%2F&pad=" + std::string(16 * 1024, 'a');
  response = client.Post("/login", padded, "application/x-www-form-urlencoded");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 413);
}

TEST_F(ConnectionLimitsTest, ConnectionsBeyondTheCapAreRefusedAtOnce) {
  HttpOptions options = Patient();
  options.limits.max_connections = 8;
  options.limits.workers = 8;
  options.limits.head_timeout = std::chrono::seconds(120);
  Start(options);
  // Eight connections that never finish a request; the ninth is one too many.
  std::vector<std::unique_ptr<RawClient>> slow = Connect(8, "GET /healthz HTTP/1.1\r\n");
  RawClient ninth(port_);
  bool closed = false;
  const std::string response = ninth.ReadUntilClosed(std::chrono::seconds(30), &closed);
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 503"));
  EXPECT_THAT(response, HasSubstr("8 connections were open, the limit on HTTP connections"));
  EXPECT_TRUE(closed);
  EXPECT_EQ(server_->limit_counts().refused, 1);

  // Once one closes, there is room again.
  slow.erase(slow.begin());
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(30);
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        auto answer = client.Get("/healthz");
        return answer && answer->status == 200;
      },
      30000));
}

TEST_F(ConnectionLimitsTest, ASecondServerCannotTakeTheSamePort) {
  Start(HttpOptions{});
  HttpOptions second;
  second.listen = "127.0.0.1:" + std::to_string(port_);
  HttpSources sources;
  sources.store = store_.get();
  sources.authenticator = authenticator_.get();
  sources.metrics = &metrics_;
  sources.clock = &clock_;
  auto server = HttpServer::Start(second, std::move(sources));
  ASSERT_FALSE(server.ok()) << "two servers share port " << port_;
  EXPECT_TRUE(absl::IsUnavailable(server.status())) << server.status();
}

TEST_F(ConnectionLimitsTest, ShutdownDoesNotWaitForClientsThatNeverSendARequest) {
  HttpOptions options;
  options.limits.head_timeout = std::chrono::seconds(120);
  Start(options);
  std::vector<std::unique_ptr<RawClient>> slow = Connect(16, "GET /healthz HTTP/1.1\r\n");
  Dribbler dribbler(slow, HeaderLine);
  httplib::Client client("127.0.0.1", port_);
  ASSERT_TRUE(client.Get("/healthz"));  // every slow one has been accepted before this one
  const Clock::time_point start = Clock::now();
  server_->Shutdown();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
  EXPECT_TRUE(testing::WaitUntil([&] { return dribbler.closed() == 16; }, 30000));
}

}  // namespace
}  // namespace stylesweep
