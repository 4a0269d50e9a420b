// Scoped credentials from outside: tokens made and revoked with the real
// `stylesweep tokens` against the coordinator's database file, a real
// coordinator on a free loopback port (in this process, or as its own
// process where its memory is measured), and raw gRPC and HTTP clients
// holding each role's token, or another agent's, or none. After each refused
// call the test reads the database itself: nothing may have changed.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"
#include "common/files.h"
#include "coordinator/server.h"
#include "rpc/transport.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

constexpr int64_t kDeadlineMs = 30000;

// One value from the database file, as text, through its own read-only
// connection.
std::string QueryText(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(handle, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
  std::string value = "<no row>";
  if (sqlite3_step(stmt) == SQLITE_ROW) value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(handle);
  return value;
}

int64_t QueryInt(const std::string& db, const std::string& sql) {
  int64_t value = -1;
  EXPECT_TRUE(absl::SimpleAtoi(QueryText(db, sql), &value)) << sql;
  return value;
}

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_credentials_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "sweeps.db").string();
    bin_ = STYLESWEEP_BIN_DIR;
    // The database exists before any token: the coordinator creates it.
    auto store = OpenSqliteStore(db_);
    ASSERT_TRUE(store.ok()) << store.status();
  }

  void TearDown() override {
    stubs_.clear();
    if (server_) server_->Shutdown();
    server_.reset();
    fs::remove_all(dir_);
  }

  // `stylesweep tokens ARGS... --db DB`: exit status and output.
  int Tokens(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {bin_ + "/stylesweep", "tokens"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--db");
    argv.push_back(db_);
    return testing::RunCommand(argv, output);
  }

  // Creates a token with the CLI; returns it.
  std::string CreateToken(const std::string& name, const std::string& role, const std::string& agents = "") {
    std::vector<std::string> args = {"create", name, "--role", role};
    if (!agents.empty()) {
      args.push_back("--agents");
      args.push_back(agents);
    }
    std::string output;
    EXPECT_EQ(Tokens(args, &output), 0) << output;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      if (absl::StartsWith(line, "ssw_")) return std::string(line);
    }
    ADD_FAILURE() << "no token in: " << output;
    return "";
  }

  void StartCoordinator(const ServerSecurity& security = {}) {
    CoordinatorConfig config;
    config.listen = "127.0.0.1:0";
    config.http = "127.0.0.1:0";
    config.db = db_;
    config.artifacts = (dir_ / "artifacts").string();
    config.security = security;
    auto server = CoordinatorServer::Start(config);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  v1::Coordinator::Stub& Stub(const ClientSecurity& security = {}) {
    auto channel = MakeChannel(server_->address(), security);
    EXPECT_TRUE(channel.ok()) << channel.status();
    stubs_.push_back(v1::Coordinator::NewStub(*channel));
    return *stubs_.back();
  }

  template <typename Request, typename Response>
  grpc::Status Call(grpc::Status (v1::Coordinator::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const std::string& token, const Request& request, Response* response,
                    v1::Coordinator::Stub* stub = nullptr) {
    grpc::ClientContext context;
    ClientSecurity security;
    security.token = token;
    PrepareContext(context, security, kDeadlineMs);
    if (stub == nullptr) stub = &Stub();
    return (stub->*method)(&context, request, response);
  }

  grpc::Status Register(const std::string& token, const std::string& name, const std::string& host = "host") {
    v1::RegisterAgentRequest request;
    request.set_name(name);
    request.set_host(host);
    request.set_device("cpu");
    v1::RegisterAgentResponse response;
    return Call(&v1::Coordinator::Stub::RegisterAgent, token, request, &response);
  }

  grpc::Status Submit(const std::string& token) {
    v1::SubmitSweepRequest request;
    request.set_yaml("name: creds\ncontent: c.png\nstyle: s.png\nparameters:\n  steps: {value: 2}\n");
    request.set_source("creds.yaml");
    request.set_dry_run(true);
    v1::SubmitSweepResponse response;
    return Call(&v1::Coordinator::Stub::SubmitSweep, token, request, &response);
  }

  grpc::Status GetSweeps(const std::string& token) {
    v1::GetSweepRequest request;
    v1::GetSweepResponse response;
    return Call(&v1::Coordinator::Stub::GetSweep, token, request, &response);
  }

  fs::path dir_;
  std::string db_;
  std::string bin_;
  std::unique_ptr<CoordinatorServer> server_;
  std::vector<std::unique_ptr<v1::Coordinator::Stub>> stubs_;
};

TEST_F(CredentialsTest, TokensAreShownOnceAndOnlyTheirSaltedHashIsStored) {
  const std::string token = CreateToken("alice", "user");
  ASSERT_THAT(token, Not(""));
  const std::string secret = token.substr(token.rfind('_') + 1);
  // Neither the database nor its journal holds the secret.
  for (const std::string& file : {db_, db_ + "-wal"}) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(secret), std::string::npos) << file;
  }
  EXPECT_EQ(QueryInt(db_, "SELECT length(secret_hash) FROM credentials WHERE name = 'alice'"), 64);

  std::string list;
  ASSERT_EQ(Tokens({"list"}, &list), 0) << list;
  EXPECT_THAT(list, HasSubstr("alice"));
  EXPECT_THAT(list, HasSubstr("user"));
  EXPECT_THAT(list, Not(HasSubstr(secret)));
  EXPECT_THAT(list, Not(HasSubstr(QueryText(db_, "SELECT secret_hash FROM credentials"))));

  // --out writes an owner-only file.
  const std::string out = (dir_ / "agent.token").string();
  std::string output;
  ASSERT_EQ(Tokens({"create", "host-1", "--role", "agent", "--agents", "gpu-*", "--out", out}, &output), 0) << output;
  EXPECT_THAT(output, Not(HasSubstr("ssw_")));
  struct stat st{};
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  // Mistakes are named, and change nothing.
  EXPECT_EQ(Tokens({"create", "alice", "--role", "user"}, &output), 1);
  EXPECT_THAT(output, HasSubstr("a credential named 'alice' exists"));
  EXPECT_EQ(Tokens({"create", "bob", "--role", "admin"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("expected agent, user or reader"));
  EXPECT_EQ(Tokens({"create", "host-2", "--role", "agent"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("names the agents it may act as"));
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM credentials"), 2);
  EXPECT_NE(testing::RunCommand({bin_ + "/stylesweep", "tokens", "list", "--db", (dir_ / "typo.db").string()}, &output),
            0);
  EXPECT_THAT(output, HasSubstr("no database at"));
  EXPECT_FALSE(fs::exists(dir_ / "typo.db"));
}

TEST_F(CredentialsTest, EachRoleMayCallOnlyItsMethods) {
  const std::string user = CreateToken("alice", "user");
  const std::string reader = CreateToken("grafana", "reader");
  const std::string agent = CreateToken("host-1", "agent", "gpu-1");
  StartCoordinator();

  EXPECT_EQ(GetSweeps("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetSweeps("ssw_1_" + std::string(64, '0')).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetSweeps(user).ok());
  EXPECT_TRUE(GetSweeps(reader).ok());
  grpc::Status agent_reads = GetSweeps(agent);
  EXPECT_EQ(agent_reads.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(agent_reads.error_message(), HasSubstr("token:host-1 (role agent) may not call GetSweep"));

  EXPECT_EQ(Submit(user).error_code(), grpc::StatusCode::INVALID_ARGUMENT);  // past the role check: no images sent
  for (const std::string& token : {reader, agent}) {
    grpc::Status s = Submit(token);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("that needs role user"));
  }
  v1::ControlSweepRequest cancel;
  cancel.set_sweep("1");
  cancel.set_action(v1::ControlSweepRequest::CANCEL);
  v1::ControlSweepResponse cancelled;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::ControlSweep, reader, cancel, &cancelled).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&v1::Coordinator::Stub::ControlSweep, agent, cancel, &cancelled).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Users and readers are not agents.
  EXPECT_EQ(Register(user, "gpu-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Register(reader, "gpu-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM agents"), 0);
  ASSERT_TRUE(Register(agent, "gpu-1").ok());
  EXPECT_EQ(QueryText(db_, "SELECT credential FROM agents WHERE name = 'gpu-1'"), "token:host-1");

  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM sweeps"), 0);
}

TEST_F(CredentialsTest, AnAgentCannotActUnderAnotherAgentsName) {
  const std::string host1 = CreateToken("host-1", "agent", "gpu-1");
  const std::string wide = CreateToken("host-2", "agent", "gpu-*");
  StartCoordinator();

  EXPECT_EQ(Register(host1, "gpu-2").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Register(host1, "gpu-1", "host-one").ok());
  // Another credential that may use the name still cannot take it while
  // its agent is live...
  grpc::Status taken = Register(wide, "gpu-1", "evil");
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(taken.error_message(), HasSubstr("registered with another credential"));
  // ...nor act for it.
  v1::LeaseRunRequest lease;
  lease.set_agent("gpu-1");
  v1::LeaseRunResponse leased;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::LeaseRun, wide, lease, &leased).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::HeartbeatRequest beat;
  beat.set_agent("gpu-1");
  v1::HeartbeatResponse beaten;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::Heartbeat, wide, beat, &beaten).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::CompleteRunRequest complete;
  complete.set_agent("gpu-1");
  complete.set_run_id(1);
  complete.set_attempt(1);
  complete.set_state("SUCCEEDED");
  v1::CompleteRunResponse completed;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::CompleteRun, wide, complete, &completed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::UploadSnapshotRequest upload;
  upload.set_agent("gpu-1");
  upload.set_run_id(1);
  upload.set_attempt(1);
  upload.set_png("not a png");
  v1::UploadSnapshotResponse uploaded;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::UploadSnapshot, wide, upload, &uploaded).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // The agent's record is untouched; its own credential still works.
  EXPECT_EQ(QueryText(db_, "SELECT host || ' ' || credential FROM agents WHERE name = 'gpu-1'"),
            "host-one token:host-1");
  EXPECT_TRUE(Call(&v1::Coordinator::Stub::LeaseRun, host1, lease, &leased).ok());
  // The same credential may register again (a restart).
  EXPECT_TRUE(Register(host1, "gpu-1", "host-one-again").ok());
  // The wide credential registers its own names.
  EXPECT_TRUE(Register(wide, "gpu-7").ok());
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM agents"), 2);
}

TEST_F(CredentialsTest, RevocationAndNewTokensTakeEffectOnTheNextCall) {
  const std::string user = CreateToken("alice", "user");
  StartCoordinator();
  ASSERT_TRUE(GetSweeps(user).ok());
  // Made while the coordinator runs: accepted at once.
  const std::string reader = CreateToken("grafana", "reader");
  EXPECT_TRUE(GetSweeps(reader).ok());
  std::string output;
  ASSERT_EQ(Tokens({"revoke", "alice"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("revoked token 'alice'"));
  grpc::Status refused = GetSweeps(user);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("token 'alice' was revoked"));
  ASSERT_EQ(Tokens({"revoke", "alice"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("already revoked"));
  EXPECT_TRUE(GetSweeps(reader).ok());
  std::string list;
  ASSERT_EQ(Tokens({"list", "--json"}, &list), 0);
  EXPECT_THAT(list, HasSubstr("\"name\":\"alice\""));
  EXPECT_THAT(list, Not(HasSubstr("\"revoked_ms\":0,\"role\":\"user\"")));
}

TEST_F(CredentialsTest, TheDashboardFollowsTheSameTable) {
  const std::string reader = CreateToken("grafana", "reader");
  const std::string agent = CreateToken("host-1", "agent", "gpu-1");
  StartCoordinator();
  const std::string address = server_->http_address();
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10);
  EXPECT_EQ(client.Get("/api/state")->status, 401);
  EXPECT_EQ(client.Get("/metrics", {{"Authorization", "Bearer " + reader}})->status, 200);
  EXPECT_EQ(client.Get("/metrics", {{"Authorization", "Bearer " + agent}})->status, 403);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
}

// A client certificate signed by --tls-client-ca stands for the one agent its
// common name names.
TEST_F(CredentialsTest, MutualTlsNamesTheAgent) {
  const std::string openssl = testing::FindProgram("openssl");
  if (openssl.empty()) GTEST_SKIP() << "openssl is not installed: cannot make test certificates";
  const std::string d = dir_.string() + "/";
  std::string output;
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), openssl);
    ASSERT_EQ(testing::RunCommand(argv, &output), 0) << output;
  };
  run({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test CA", "-days", "1", "-keyout", d + "ca.key",
       "-out", d + "ca.pem"});
  run({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
       "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", d + "server.key", "-out", d + "server.pem"});
  for (const std::string name : {"gpu-7", "mallory"}) {
    run({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout", d + name + ".key", "-out",
         d + name + ".csr"});
    run({"x509", "-req", "-in", d + name + ".csr", "-CA", d + "ca.pem", "-CAkey", d + "ca.key", "-CAcreateserial",
         "-days", "1", "-out", d + name + ".pem"});
  }
  // A certificate signed by another CA.
  run({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=gpu-7", "-days", "1", "-keyout",
       d + "self.key", "-out", d + "self.pem"});
  if (HasFatalFailure()) return;
  const std::string user = CreateToken("alice", "user");

  ServerSecurity security;
  security.tls_cert_file = d + "server.pem";
  security.tls_key_file = d + "server.key";
  security.tls_client_ca_file = d + "ca.pem";
  StartCoordinator(security);

  auto client = [&](const std::string& name) {
    ClientSecurity tls;
    tls.tls = true;
    tls.tls_ca_file = d + "server.pem";
    if (!name.empty()) {
      tls.tls_cert_file = d + name + ".pem";
      tls.tls_key_file = d + name + ".key";
    }
    return &Stub(tls);
  };
  v1::RegisterAgentRequest request;
  request.set_host("h");
  request.set_device("cpu");
  v1::RegisterAgentResponse response;
  request.set_name("gpu-7");
  EXPECT_TRUE(Call(&v1::Coordinator::Stub::RegisterAgent, "", request, &response, client("gpu-7")).ok());
  EXPECT_EQ(QueryText(db_, "SELECT credential FROM agents WHERE name = 'gpu-7'"), "certificate:gpu-7");
  request.set_name("gpu-8");
  EXPECT_EQ(Call(&v1::Coordinator::Stub::RegisterAgent, "", request, &response, client("gpu-7")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  request.set_name("gpu-7");
  EXPECT_EQ(Call(&v1::Coordinator::Stub::RegisterAgent, "", request, &response, client("mallory")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // An agent certificate does not make a user.
  v1::GetSweepRequest get;
  v1::GetSweepResponse got;
  EXPECT_EQ(Call(&v1::Coordinator::Stub::GetSweep, "", get, &got, client("gpu-7")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // Users come with their token; without a certificate or a token, nothing.
  EXPECT_TRUE(Call(&v1::Coordinator::Stub::GetSweep, user, get, &got, client("")).ok());
  EXPECT_EQ(Call(&v1::Coordinator::Stub::GetSweep, "", get, &got, client("")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A certificate from another CA fails the handshake.
  request.set_name("gpu-7");
  grpc::Status foreign = Call(&v1::Coordinator::Stub::RegisterAgent, "", request, &response, client("self"));
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::UNAVAILABLE) << foreign.error_message();
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM agents"), 1);
}

// The peak memory of a real coordinator process, from /proc.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kb = 0;
    if (absl::StartsWith(line, "VmHWM:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(6), "kB")), &kb)) {
      return kb;
    }
  }
  return -1;
}

// Eight 63 MB calls without a credential used to be read whole before the
// token was checked (1.08 GB). Now their headers are refused first.
TEST_F(CredentialsTest, CallsWithoutACredentialAreRefusedBeforeTheirBodyIsRead) {
  (void)CreateToken("alice", "user");
  const std::string address_file = (dir_ / "address").string();
  testing::Subprocess coordinator({bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--db", db_,
                                   "--artifacts", (dir_ / "artifacts").string(), "--address-file", address_file},
                                  (dir_ / "coordinator.log").string());
  ASSERT_TRUE(testing::WaitUntil([&] { return fs::exists(address_file); }, 20000)) << coordinator.Log();
  absl::StatusOr<std::string> address = ReadFileToString(address_file);
  ASSERT_TRUE(address.ok());
  auto channel = MakeChannel(std::string(absl::StripAsciiWhitespace(*address)), ClientSecurity{});
  ASSERT_TRUE(channel.ok());
  auto stub = v1::Coordinator::NewStub(*channel);
  const pid_t pid = coordinator.pid();
  const int64_t before_kb = PeakRssKb(pid);
  v1::SubmitSweepRequest request;
  request.set_yaml("name: x\n");
  v1::FileBlob* blob = request.add_files();
  blob->set_path("c.png");
  blob->set_data(std::string(63 << 20, 'x'));
  std::vector<std::future<grpc::Status>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      grpc::ClientContext context;
      PrepareContext(context, ClientSecurity{}, kDeadlineMs);
      v1::SubmitSweepResponse response;
      return stub->SubmitSweep(&context, request, &response);
    }));
  }
  for (auto& call : calls) EXPECT_EQ(call.get().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const int64_t after_kb = PeakRssKb(pid);
  std::printf("coordinator peak RSS: %lld kB before, %lld kB after 8 unauthenticated 63 MB calls\n",
              static_cast<long long>(before_kb), static_cast<long long>(after_kb));
  // Eight bodies read whole would add more than 500 MB.
  EXPECT_LT(after_kb - before_kb, 64 * 1024) << "the coordinator read bodies it then refused";
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM sweeps"), 0);
}

}  // namespace
}  // namespace stylesweep
