// The HTTP surface on loopback with a real store: who may read what, the
// probes, the dashboard's JSON and snapshots, and /metrics as Prometheus
// reads it.

#include "coordinator/http/http_server.h"

#include "coordinator/auth/credentials.h"
#include "coordinator/http/dashboard_page.h"
#include "coordinator/http/dashboard_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "s3cret-token";

constexpr int64_t kLeaseMs = 30000;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stylesweep_http_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
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

  // `token`: the shared token the authenticator accepts (empty: none).
  HttpSources Sources(const std::string& token = "") {
    authenticator_ = std::make_unique<Authenticator>(*store_, clock_, AuthSettings{token, true});
    HttpSources sources;
    sources.store = store_.get();
    sources.authenticator = authenticator_.get();
    sources.metrics = &metrics_;
    sources.clock = &clock_;
    sources.artifacts_dir = (dir_ / "artifacts").string();
    sources.db_path = (dir_ / "sweeps.db").string();
    sources.agent_lost_after_ms = kLeaseMs;
    sources.process_start_seconds = 1700000000;
    sources.shutting_down = [this] { return shutting_down_.load(); };
    return sources;
  }

  // Starts on a free loopback port; `token` empty: none required.
  void Start(const std::string& token) {
    HttpOptions options;
    options.listen = "127.0.0.1:0";
    options.security.token = token;
    auto server = HttpServer::Start(options, Sources(token));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // A scoped token in the store; returns it.
  std::string CreateToken(const std::string& name, const std::string& role, const std::string& agents = "") {
    absl::StatusOr<NewCredential> made = MakeCredential(name, role, agents, clock_.NowMillis());
    EXPECT_TRUE(made.ok()) << made.status();
    absl::StatusOr<int64_t> id = store_->CreateCredential(made->record);
    EXPECT_TRUE(id.ok()) << id.status();
    return FormatToken(*id, made->secret);
  }

  httplib::Client Client() {
    const std::string& address = server_->address();
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    return client;
  }

  // A sweep with one run leased to `agent`, which reports being at step 7 of
  // 20. Returns the run's id.
  int64_t RunningRun(const std::string& agent) {
    NewSweep sweep;
    sweep.name = "cats \"&\" <dogs>";
    sweep.yaml = "name: cats\n";
    sweep.spec_json = "{}";
    sweep.created_ms = 1;
    NewRun run;
    run.params_json = R"({"steps": 20})";
    run.params_hash = "h0";
    NewRun queued = run;
    queued.index = 1;
    queued.params_hash = "h1";
    auto sweep_id = store_->CreateSweep(sweep, {run, queued});
    EXPECT_TRUE(sweep_id.ok()) << sweep_id.status();
    AgentRecord record;
    record.name = agent;
    record.host = "gpu-box";
    record.device = "cuda:0";
    record.device_name = "NVIDIA H200";
    record.registered_ms = clock_.NowMillis();
    record.last_seen_ms = clock_.NowMillis();
    EXPECT_TRUE(store_->UpsertAgent(record, 0).ok());
    auto lease = store_->ClaimNextRun(agent, clock_.NowMillis(), clock_.NowMillis() + kLeaseMs);
    EXPECT_TRUE(lease.ok() && lease->has_value());
    const int64_t run_id = (*lease)->run.id;
    AgentActivity activity;
    activity.run_id = run_id;
    activity.attempt = 1;
    activity.step = 7;
    activity.steps = 20;
    activity.steps_per_second = 3.5;
    EXPECT_TRUE(store_->RecordAgentActivity(agent, clock_.NowMillis(), activity).ok());
    return run_id;
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Authenticator> authenticator_;
  CoordinatorMetrics metrics_;
  testing::FakeClock clock_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, WithoutATokenOnLoopbackEveryPageIsOpen) {
  Start("");
  httplib::Client client = Client();
  for (const char* path : {"/", "/api/state", "/metrics", "/healthz", "/readyz"}) {
    auto response = client.Get(path);
    ASSERT_TRUE(response) << path << ": " << httplib::to_string(response.error());
    EXPECT_EQ(response->status, 200) << path << ": " << response->body;
  }
  auto page = client.Get("/");
  EXPECT_THAT(page->body, HasSubstr("<title>stylesweep</title>"));
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  // Nothing the page needs comes from elsewhere.
  EXPECT_THAT(page->body, Not(HasSubstr("http://")));
  EXPECT_THAT(page->body, Not(HasSubstr("https://")));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(client.Get("/no-such-page")->status, 404);
}

TEST_F(HttpServerTest, WithATokenOnlyTheProbesAreOpen) {
  Start(kToken);
  httplib::Client client = Client();
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  for (const char* path : {"/", "/api/state", "/metrics", "/api/snapshot/1"}) {
    auto response = client.Get(path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 401) << path;
    EXPECT_THAT(response->body, HasSubstr("requires a token")) << path;
    EXPECT_EQ(response->get_header_value("WWW-Authenticate"), "Bearer realm=\"stylesweep\"");
  }
  auto wrong = client.Get("/metrics", {{"Authorization", "Bearer not-the-token"}});
  EXPECT_EQ(wrong->status, 401);
  EXPECT_THAT(wrong->body, HasSubstr("wrong token"));
  EXPECT_THAT(wrong->body, Not(HasSubstr("stylesweep_")));
  auto right = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(right->status, 200);
  EXPECT_THAT(right->body, HasSubstr("stylesweep_agents"));
}

// A browser posts the token from /login's form: it gets a session cookie
// that expires, and the token never appears in an address.
TEST_F(HttpServerTest, LoginFormSetsAnExpiringSessionCookieAndRedirects) {
  Start(kToken);
  httplib::Client client = Client();
  auto form = client.Get("/login");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 200);
  EXPECT_THAT(form->body, HasSubstr("method=\"post\" action=\"/login\""));
  EXPECT_THAT(form->get_header_value("Content-Security-Policy"), HasSubstr("form-action 'self'"));

  auto wrong = client.Post("/login", "token=guess", "application/x-www-form-urlencoded");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_FALSE(wrong->has_header("Set-Cookie"));

  auto login = client.Post("/login", std::string("token=") + kToken, "application/x-www-form-urlencoded");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 303);
  EXPECT_EQ(login->get_header_value("Location"), "/");
  const std::string cookie = login->get_header_value("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("; Max-Age=43200"));
  EXPECT_THAT(cookie, HasSubstr("; HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("; SameSite=Strict"));
  EXPECT_THAT(cookie, HasSubstr("; Path=/"));
  EXPECT_THAT(cookie, Not(HasSubstr("Secure")));  // plain HTTP: a Secure cookie would never come back
  EXPECT_THAT(cookie, Not(HasSubstr(kToken)));  // the cookie is not the gRPC credential
  const std::string session = cookie.substr(0, cookie.find(';'));

  auto page = client.Get("/", {{"Cookie", "other=1; " + session}});
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", session}})->status, 200);
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", "stylesweep_session=forged"}})->status, 401);
}

// Scoped tokens follow the role table: readers and users read, agents get
// 403 on every page and cannot sign in.
TEST_F(HttpServerTest, EachRoleReadsOnlyWhatTheTableAllows) {
  const std::string reader = CreateToken("grafana", "reader");
  const std::string user = CreateToken("alice", "user");
  const std::string agent = CreateToken("host-1", "agent", "gpu-*");
  Start("");
  httplib::Client client = Client();
  for (const char* path : {"/", "/api/state", "/metrics"}) {
    EXPECT_EQ(client.Get(path, {{"Authorization", "Bearer " + reader}})->status, 200) << path;
    EXPECT_EQ(client.Get(path, {{"Authorization", "Bearer " + user}})->status, 200) << path;
    auto refused = client.Get(path, {{"Authorization", "Bearer " + agent}});
    EXPECT_EQ(refused->status, 403) << path;
    EXPECT_THAT(refused->body, HasSubstr("token:host-1 (role agent) may not read")) << path;
    EXPECT_EQ(client.Get(path)->status, 401) << path;  // tokens exist: nobody gets in without one
    EXPECT_EQ(client.Get(path, {{"Authorization", "Basic " + reader}})->status, 401) << path;
  }
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  auto agent_login = client.Post("/login", "token=" + agent, "application/x-www-form-urlencoded");
  EXPECT_EQ(agent_login->status, 403);
  EXPECT_FALSE(agent_login->has_header("Set-Cookie"));
}

// A session ends here: at its expiry whatever the browser keeps, at sign-out,
// and when its token is revoked.
TEST_F(HttpServerTest, SessionsExpireSignOutAndDieWithTheirToken) {
  const std::string reader = CreateToken("grafana", "reader");
  Start("");
  httplib::Client client = Client();
  auto login = [&] {
    auto response = client.Post("/login", "token=" + reader, "application/x-www-form-urlencoded");
    EXPECT_EQ(response->status, 303);
    const std::string cookie = response->get_header_value("Set-Cookie");
    return cookie.substr(0, cookie.find(';'));
  };
  const std::string expiring = login();
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", expiring}})->status, 200);
  clock_.Advance(kSessionLifetimeMs);
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", expiring}})->status, 401);

  const std::string signed_out = login();
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", signed_out}})->status, 200);
  auto logout = client.Post("/logout", {{"Cookie", signed_out}}, "", "application/x-www-form-urlencoded");
  EXPECT_EQ(logout->status, 303);
  EXPECT_THAT(logout->get_header_value("Set-Cookie"), HasSubstr("Max-Age=0"));
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", signed_out}})->status, 401);

  const std::string revoked = login();
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", revoked}})->status, 200);
  ASSERT_TRUE(store_->RevokeCredential("grafana", clock_.NowMillis()).ok());
  EXPECT_EQ(client.Get("/api/state", {{"Cookie", revoked}})->status, 401);
  EXPECT_EQ(client.Get("/api/state", {{"Authorization", "Bearer " + reader}})->status, 401);
}

// A token in a query string would stay in history and logs: refused, right
// or wrong, and no cookie comes from it.
TEST_F(HttpServerTest, TokenInTheAddressIsRefusedAndSetsNoCookie) {
  Start(kToken);
  httplib::Client client = Client();
  for (const std::string path : {std::string("/?token=") + kToken, std::string("/metrics?token=") + kToken,
                                 std::string("/?token=guess"), std::string("/login?token=") + kToken}) {
    auto response = client.Get(path);
    ASSERT_TRUE(response) << path;
    EXPECT_EQ(response->status, 400) << path;
    EXPECT_THAT(response->body, HasSubstr("open /login")) << path;
    EXPECT_FALSE(response->has_header("Set-Cookie")) << path;
  }
  auto post = client.Post(std::string("/login?token=") + kToken, "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 400);
  EXPECT_FALSE(post->has_header("Set-Cookie"));
}

// After login the browser goes where it asked only when that is a path on
// this server.
TEST_F(HttpServerTest, LoginRedirectsOnlyToALocalPath) {
  Start(kToken);
  httplib::Client client = Client();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/metrics", "/metrics"},
      {"/api/snapshot/3?step=10", "/api/snapshot/3?step=10"},
      {"//evil.example", "/"},
      {"//evil.example/path", "/"},
      {"/\\evil.example", "/"},
      {"/a\\b", "/"},
      {"https://evil.example/", "/"},
      {"http:evil.example", "/"},
      {"javascript:alert(1)", "/"},
      {"evil.example", "/"},
      {"/ok\r\nSet-Cookie: x=1", "/"},
      {"", "/"},
  };
  for (const auto& [next, location] : cases) {
    const std::string body = httplib::detail::params_to_query_str({{"token", kToken}, {"next", next}});
    auto login = client.Post("/login", body, "application/x-www-form-urlencoded");
    ASSERT_TRUE(login) << next;
    EXPECT_EQ(login->status, 303) << next;
    EXPECT_EQ(login->get_header_value("Location"), location) << next;
  }
}

TEST_F(HttpServerTest, NonLoopbackAddressNeedsTlsAndATokenOrInsecure) {
  HttpOptions options;
  options.listen = "0.0.0.0:0";
  auto plain = HttpServer::Start(options, Sources());
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(plain.status().message()), HasSubstr("refusing to listen on 0.0.0.0:0 without TLS and credentials"));
  options.security.token = kToken;  // a token alone travels in the clear
  EXPECT_EQ(HttpServer::Start(options, Sources()).status().code(), absl::StatusCode::kFailedPrecondition);
  options.security.token.clear();
  options.security.insecure = true;
  auto insecure = HttpServer::Start(options, Sources());
  EXPECT_TRUE(insecure.ok()) << insecure.status();
}

TEST_F(HttpServerTest, ServesHttpsWithTheCertificateAndKey) {
  const std::string cert = (dir_ / "server.crt").string();
  const std::string key = (dir_ / "server.key").string();
  std::string output;
  const std::string openssl = testing::FindProgram("openssl");
  if (openssl.empty()) GTEST_SKIP() << "openssl is not installed: cannot make a test certificate";
  if (testing::RunCommand({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert},
                          &output) != 0) {
    GTEST_SKIP() << "openssl cannot make a test certificate here: " << output;
  }
  HttpOptions options;
  options.listen = "0.0.0.0:0";  // exposed: allowed with TLS and a token
  options.security.tls_cert_file = cert;
  options.security.tls_key_file = key;
  options.security.token = kToken;
  auto server = HttpServer::Start(options, Sources(kToken));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->tls());
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi((*server)->address().substr((*server)->address().rfind(':') + 1), &port));
  // The client trusts that certificate alone and checks it names 127.0.0.1.
  httplib::SSLClient client("127.0.0.1", port);
  client.set_ca_cert_path(cert.c_str());
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(5);
  auto metrics = client.Get("/metrics", {{"Authorization", std::string("Bearer ") + kToken}});
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  // Under TLS the session cookie is never sent in the clear.
  auto login = client.Post("/login", std::string("token=") + kToken, "application/x-www-form-urlencoded");
  ASSERT_TRUE(login) << httplib::to_string(login.error());
  EXPECT_EQ(login->status, 303);
  EXPECT_THAT(login->get_header_value("Set-Cookie"),
              ::testing::AllOf(HasSubstr("; Max-Age=43200"), HasSubstr("; HttpOnly"), HasSubstr("; SameSite=Strict"),
                               HasSubstr("; Secure")));
  // Plain HTTP to the TLS port gets nothing.
  httplib::Client plain("127.0.0.1", port);
  plain.set_connection_timeout(5);
  plain.set_read_timeout(5);
  auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);

  options.security.tls_key_file = (dir_ / "missing.key").string();
  auto missing = HttpServer::Start(options, Sources());
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("missing.key"));
  // A key that is not the certificate's is named, not taken for a taken port.
  const std::string other_cert = (dir_ / "other.crt").string();
  const std::string other_key = (dir_ / "other.key").string();
  ASSERT_EQ(testing::RunCommand({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other",
                                 "-days", "1", "-keyout", other_key, "-out", other_cert},
                                &output),
            0)
      << output;
  options.security.tls_key_file = other_key;
  auto mismatched = HttpServer::Start(options, Sources());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(mismatched.status())) << mismatched.status();
  EXPECT_THAT(std::string(mismatched.status().message()),
              HasSubstr("tls_key " + other_key + " does not match tls_cert " + cert));
}

TEST_F(HttpServerTest, ReadyzSaysNotReadyWhileShuttingDown) {
  Start("");
  httplib::Client client = Client();
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  shutting_down_ = true;
  auto response = client.Get("/readyz");
  EXPECT_EQ(response->status, 503);
  EXPECT_THAT(response->body, HasSubstr("shutting down"));
  EXPECT_EQ(client.Get("/healthz")->status, 200);  // alive all the same
}

TEST_F(HttpServerTest, StateShowsAgentsRunningRunsAndSweeps) {
  const int64_t run_id = RunningRun("gpu-0");
  ASSERT_TRUE(store_->AppendMetrics(run_id, 1, {{0, 1, 2, 3, 6, 0}, {7, 0.5, 1, 1, 2.5, 0.1}}).ok());
  clock_.Advance(1500);
  Start("");
  httplib::Client client = Client();
  auto response = client.Get("/api/state");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const nlohmann::json state = nlohmann::json::parse(response->body);

  ASSERT_EQ(state["agents"].size(), 1u);
  const nlohmann::json& agent = state["agents"][0];
  EXPECT_EQ(agent["name"], "gpu-0");
  EXPECT_EQ(agent["state"], "busy");
  EXPECT_EQ(agent["device_name"], "NVIDIA H200");
  EXPECT_EQ(agent["run_id"], run_id);
  EXPECT_EQ(agent["heartbeat_age_ms"], 1500);

  ASSERT_EQ(state["running"].size(), 1u);
  const nlohmann::json& run = state["running"][0];
  EXPECT_EQ(run["run_id"], run_id);
  EXPECT_EQ(run["agent"], "gpu-0");
  EXPECT_EQ(run["sweep"], "cats \"&\" <dogs>");
  EXPECT_EQ(run["step"], 7);
  EXPECT_EQ(run["steps"], 20);
  EXPECT_EQ(run["loss"]["total"], 2.5);
  // Not evaluated yet: the page says so rather than showing zeros.
  EXPECT_TRUE(run["eval"].is_null());
  EXPECT_TRUE(run["eval_step"].is_null());
  EXPECT_TRUE(run["snapshot"].is_null());

  ASSERT_EQ(state["sweeps"].size(), 1u);
  EXPECT_EQ(state["sweeps"][0]["runs"], 2);
  EXPECT_EQ(state["sweeps"][0]["counts"]["RUNNING"], 1);
  EXPECT_EQ(state["sweeps"][0]["counts"]["QUEUED"], 1);
  EXPECT_EQ(state["totals"]["agents"]["busy"], 1);
  EXPECT_EQ(state["totals"]["agents"]["lost"], 0);
  EXPECT_EQ(state["totals"]["steps_per_second"], 3.5);

  // Silent for longer than a lease: lost, and its rate no longer counts.
  clock_.Advance(kLeaseMs + 1);
  const nlohmann::json later = nlohmann::json::parse(client.Get("/api/state")->body);
  EXPECT_EQ(later["agents"][0]["state"], "lost");
  EXPECT_EQ(later["totals"]["steps_per_second"], 0);
}

TEST(DashboardStateTest, ARunsEvaluationCarriesEveryMetricAndItsScore) {
  RunRecord run;
  EXPECT_TRUE(EvaluationJson(run).is_null());
  run.eval_step = 40;
  run.eval = Evaluation{0.25, 0.5, 0.01, 0.3, 0.4, 0.9, 0.75, 0.2};
  const nlohmann::json eval = EvaluationJson(run);
  EXPECT_EQ(eval, (nlohmann::json{{"score", 0.35},
                                  {"style", 0.25},
                                  {"content", 0.5},
                                  {"tv", 0.01},
                                  {"style_norm", 0.3},
                                  {"content_norm", 0.4},
                                  {"tv_norm", 0.9},
                                  {"ssim", 0.75},
                                  {"color", 0.2}}));
}

// The page as Chromium renders it, its request for /api/state answered with
// two running runs, one evaluated and one not yet.
TEST(DashboardStateTest, ThePageShowsEachRunningRunsEvaluation) {
  const std::string chromium = testing::FindProgram("chromium");
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian package chromium): not checked";
  RunRecord evaluated;
  evaluated.eval_step = 40;
  evaluated.eval = Evaluation{0.25, 0.5, 0.01, 0.3, 0.4, 0.9, 0.75, 0.2};
  auto running = [](int64_t id, const RunRecord& run) {
    return nlohmann::json{{"run_id", id}, {"sweep_id", 1}, {"sweep", "cats"}, {"index", id}, {"attempt", 1},
                          {"agent", "gpu-0"}, {"step", 50}, {"steps", 100}, {"steps_per_second", 2.0},
                          {"loss", {{"total", 12.5}, {"content", 5}, {"style", 7.5}, {"tv", 0}}},
                          {"eval_step", run.has_eval() ? nlohmann::json(run.eval_step) : nlohmann::json()},
                          {"eval", EvaluationJson(run)}, {"snapshot", nullptr}, {"snapshot_step", nullptr}};
  };
  const nlohmann::json state = {
      {"now_ms", 0},
      {"totals", {{"agents", {{"idle", 0}, {"busy", 1}, {"draining", 0}, {"lost", 0}, {"quarantined", 0}}},
                  {"runs", {{"QUEUED", 0}, {"RUNNING", 2}, {"SUCCEEDED", 0}, {"FAILED", 0}, {"LOST", 0},
                            {"CANCELLED", 0}, {"PRUNED", 0}}},
                  {"steps_per_second", 2.0}}},
      {"sweeps", nlohmann::json::array()},
      {"running", {running(7, evaluated), running(8, RunRecord{})}},
      {"agents", nlohmann::json::array()}};
  // Answers the page's one request before its own script runs.
  const std::string stub = "<script>window.fetch = async () => new Response(" +
                           nlohmann::json(state.dump()).dump() + ", {status: 200});</script>";
  std::string page(DashboardPage());
  const size_t script = page.find("<script>");
  ASSERT_NE(script, std::string::npos);
  page.insert(script, stub);
  const fs::path dir = fs::temp_directory_path() / ("stylesweep-dashboard-page-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomically((dir / "page.html").string(), page).ok());
  std::string dom;
  const int status = testing::RunCommand(
      {testing::FindProgram("timeout"), "60", chromium, "--headless", "--no-sandbox", "--disable-gpu",
       "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + (dir / "profile").string(),
       "--virtual-time-budget=3000", "--dump-dom", "file://" + (dir / "page.html").string()},
      &dom);
  fs::remove_all(dir);
  ASSERT_EQ(status, 0) << dom.substr(0, 4000);
  EXPECT_THAT(dom, HasSubstr("<div class=\"meta eval\">eval/score 0.35 (style 0.25, content 0.5) at step 40</div>"));
  EXPECT_THAT(dom, HasSubstr("<div class=\"meta eval\">eval/score — (not evaluated yet)</div>"));
  EXPECT_THAT(dom, HasSubstr("loss 12.5 (content 5, style 7.5)"));  // still shown, below
}

TEST_F(HttpServerTest, ServesTheLatestSnapshotAndNothingOutsideTheArtifacts) {
  const int64_t run_id = RunningRun("gpu-0");
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "step-4";
  ASSERT_TRUE(WriteFileAtomically((dir_ / "artifacts" / "s" / "step-2.png").string(), "older").ok());
  ASSERT_TRUE(WriteFileAtomically((dir_ / "artifacts" / "s" / "step-4.png").string(), png).ok());
  ASSERT_TRUE(WriteFileAtomically((dir_ / "secret.png").string(), "SECRET-CONTENT").ok());
  ASSERT_TRUE(store_->AddSnapshot({run_id, 1, 4, "s/step-4.png", false}).ok());
  ASSERT_TRUE(store_->AddSnapshot({run_id, 1, 2, "s/step-2.png", false}).ok());
  Start("");
  httplib::Client client = Client();

  auto latest = client.Get("/api/snapshot/" + std::to_string(run_id));
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->status, 200);
  EXPECT_EQ(latest->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(latest->body, png);
  EXPECT_EQ(client.Get("/api/snapshot/" + std::to_string(run_id) + "?step=2")->body, "older");
  EXPECT_EQ(client.Get("/api/snapshot/" + std::to_string(run_id) + "?step=3")->status, 404);
  EXPECT_EQ(client.Get("/api/snapshot/" + std::to_string(run_id) + "?step=x")->status, 400);
  EXPECT_EQ(client.Get("/api/snapshot/999")->status, 404);
  EXPECT_EQ(client.Get("/api/snapshot/..%2F..%2Fsecret.png")->status, 404);

  // The state links the latest one.
  const nlohmann::json state = nlohmann::json::parse(client.Get("/api/state")->body);
  EXPECT_EQ(state["running"][0]["snapshot"], "/api/snapshot/" + std::to_string(run_id) + "?step=4");

  // A recorded path that climbs out of the artifacts directory is refused.
  ASSERT_TRUE(store_->AddSnapshot({run_id, 1, 6, "../secret.png", false}).ok());
  auto escaped = client.Get("/api/snapshot/" + std::to_string(run_id));
  EXPECT_EQ(escaped->status, 403);
  EXPECT_THAT(escaped->body, Not(HasSubstr("SECRET-CONTENT")));
}

TEST_F(HttpServerTest, MetricsShowEveryStateAndAreAcceptedByPromtool) {
  RunningRun("gpu-0");
  metrics_.RecordRpc("/stylesweep.v1.Coordinator/LeaseRun", "OK", 0.002);
  metrics_.RecordRpc("/stylesweep.v1.Coordinator/Heartbeat", "UNAUTHENTICATED", 0.0001);
  metrics_.RecordMetricRows(4, 3);
  metrics_.RecordSnapshot();
  Start("");
  httplib::Client client = Client();
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = response->body;
  for (const char* line : {
           "stylesweep_agents{state=\"idle\"} 0\n", "stylesweep_agents{state=\"busy\"} 1\n",
           "stylesweep_agents{state=\"draining\"} 0\n", "stylesweep_agents{state=\"lost\"} 0\n",
           "stylesweep_agents{state=\"quarantined\"} 0\n", "stylesweep_runs{state=\"QUEUED\"} 1\n",
           "stylesweep_runs{state=\"RUNNING\"} 1\n", "stylesweep_runs{state=\"SUCCEEDED\"} 0\n",
           "stylesweep_runs{state=\"PRUNED\"} 0\n",
           "stylesweep_sweep_runs{sweep_id=\"1\",sweep=\"cats \\\"&\\\" <dogs>\",state=\"RUNNING\"} 1\n",
           "stylesweep_steps_per_second 3.5\n", "stylesweep_metric_rows_total 4\n", "stylesweep_steps_total 3\n",
           "stylesweep_snapshots_total 1\n", "stylesweep_process_start_time_seconds 1700000000\n",
           "stylesweep_rpc_duration_seconds_count{method=\"stylesweep.v1.Coordinator/LeaseRun\",code=\"OK\"} 1\n",
           "stylesweep_rpc_duration_seconds_bucket{method=\"stylesweep.v1.Coordinator/Heartbeat\","
           "code=\"UNAUTHENTICATED\",le=\"0.0005\"} 1\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  // The database file is there, so its size is not 0.
  EXPECT_THAT(text, HasSubstr("stylesweep_database_size_bytes "));
  EXPECT_THAT(text, Not(HasSubstr("stylesweep_database_size_bytes 0\n")));

  const fs::path scraped = dir_ / "metrics.txt";
  std::ofstream(scraped) << text;
  const std::string promtool = testing::FindProgram("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not installed (Debian package prometheus): not checked";
  std::string output;
  EXPECT_EQ(testing::RunCommand({"/bin/sh", "-c", "'" + promtool + "' check metrics < '" + scraped.string() + "'"},
                                &output),
            0)
      << output << "\n" << text;
}

}  // namespace
}  // namespace stylesweep
