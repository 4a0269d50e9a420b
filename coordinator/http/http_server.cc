#include "coordinator/http/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "coordinator/http/connection_limits.h"
#include "coordinator/http/dashboard_page.h"
#include "coordinator/auth/roles.h"
#include "coordinator/http/dashboard_state.h"
#include "rpc/tls_files.h"

namespace stylesweep {
namespace {

constexpr char kSessionCookie[] = "stylesweep_session";
// How long a browser keeps the session cookie: as long as the session lasts
// here (sessions.h).
constexpr int64_t kSessionSeconds = kSessionLifetimeMs / 1000;

// The dashboard's script and style are inline; everything it loads comes
// from this server.
constexpr char kPagePolicy[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// The login page posts the token in a form body, so it never sits in an
// address the browser keeps (history, bookmarks, Referer) or a proxy logs. Its
// script reads a token from the fragment (/login#token=TOKEN, which no server
// sees), drops it from the address and submits the form for the user.
constexpr char kLoginPolicy[] =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";
constexpr char kLoginPage[] = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stylesweep: sign in</title>
<style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:24em}input{font:inherit}</style></head>
<body><h1>stylesweep</h1>
<form id="login" method="post" action="/login">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Open the dashboard</button>
</form>
<script>
const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
if (match) {
  history.replaceState(null, "", location.pathname);
  const form = document.getElementById("login");
  form.token.value = decodeURIComponent(match[1]);
  form.submit();
}
</script>
</body></html>
)";

std::string CookieValue(const httplib::Request& request, absl::string_view name) {
  for (size_t i = 0; i < request.get_header_value_count("Cookie"); ++i) {
    for (absl::string_view part : absl::StrSplit(request.get_header_value("Cookie", i), ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) return std::string(part);
    }
  }
  return "";
}

// Where a login may send the browser: a path on this server. Refuses
// "//host" and "/\\host" (browsers read both as another host), absolute URLs
// and anything with control characters.
bool IsLocalPath(absl::string_view target) {
  if (target.empty() || target[0] != '/') return false;
  if (target.size() > 1 && (target[1] == '/' || target[1] == '\\')) return false;
  for (char c : target) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

void Plain(httplib::Response& response, int status, const std::string& text) {
  response.status = status;
  response.set_content(text + "\n", "text/plain; charset=utf-8");
}

// "host:port" or "[v6]:port" -> host (without brackets) and port.
absl::Status SplitListen(const std::string& listen, std::string& host, int& port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http '", listen, "': expected HOST:PORT, e.g. 127.0.0.1:8080"));
  }
  host = listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) host = host.substr(1, host.size() - 2);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options, HttpSources sources) {
  if (absl::Status s = CheckExposure(options.listen, options.security, "read every sweep, run and image"); !s.ok()) {
    return s;
  }
  std::string host;
  int port = 0;
  if (absl::Status s = SplitListen(options.listen, host, port); !s.ok()) return s;

  std::unique_ptr<HttpServer> server(new HttpServer());
  server->options_ = options;
  server->sources_ = std::move(sources);
  const ServerSecurity& security = options.security;
  if (!security.tls_cert_file.empty() || !security.tls_key_file.empty()) {
    // httplib reports only "not valid": check the files first so that what
    // is wrong with them, and which, is named.
    if (absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(security.tls_cert_file, security.tls_key_file);
        !pair.ok()) {
      return pair.status();
    }
    auto ssl = std::make_unique<httplib::SSLServer>(security.tls_cert_file.c_str(), security.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat("cannot serve HTTPS with certificate '", security.tls_cert_file,
                                                     "' and key '", security.tls_key_file,
                                                     "': not a PEM certificate and its matching private key"));
    }
    server->server_ = std::move(ssl);
    server->tls_ = true;
  } else {
    server->server_ = std::make_unique<httplib::Server>();
  }
  server->limits_ = std::make_unique<ConnectionLimits>(options.limits, server->tls_);
  server->limits_->Install(*server->server_);
  server->Route();

  int bound = -1;
  if (port == 0) {
    bound = server->server_->bind_to_any_port(host);
  } else if (server->server_->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", options.listen, ": the address is taken or not valid on this machine"));
  }
  server->limits_->Listening(bound);
  const size_t colon = options.listen.rfind(':');
  server->address_ = absl::StrCat(options.listen.substr(0, colon), ":", bound);
  HttpServer* s = server.get();
  s->thread_ = std::thread([s] {
    s->server_->listen_after_bind();
    s->listen_returned_ = true;
  });
  // The socket already accepts connections; wait for the accept loop only so
  // that a Shutdown() right after this cannot come before it and be missed.
  while (!s->server_->is_running() && !s->listen_returned_) std::this_thread::yield();
  return server;
}

void HttpServer::Route() {
  const bool tls = tls_;
  HttpSources& sources = sources_;
  SessionTable& sessions = sessions_;

  server_->set_default_headers({{"Cache-Control", "no-store"},
                                {"X-Content-Type-Options", "nosniff"},
                                {"Referrer-Policy", "no-referrer"}});

  // The role table (coordinator/auth/roles.h), before any route and before
  // a request's body is read.
  auto authenticate = [&sources, &sessions](const httplib::Request& request, httplib::Response& response) {
    using Result = httplib::Server::HandlerResponse;
    if (request.has_param("token")) {
      // A token in an address stays in history, bookmarks and logs: refuse
      // it, valid or not, on any path, and set nothing from it.
      Plain(response, 400,
            "a token does not belong in an address (browsers and proxies keep it): open /login and enter it "
            "there, or send 'Authorization: Bearer TOKEN'");
      return Result::Handled;
    }
    const RoleSet roles = RolesForHttp(request.path);
    // Probes and the sign-in page: orchestrators and load balancers call
    // the probes without credentials, and they tell nothing beyond "up" and
    // "ready".
    if (roles.empty()) return Result::Unhandled;
    const std::string authorization = request.get_header_value("Authorization");
    const std::string session = CookieValue(request, kSessionCookie);
    absl::StatusOr<Caller> caller = absl::UnauthenticatedError("");
    if (!authorization.empty()) {
      absl::string_view bearer = authorization;
      // Anything but a bearer token is a wrong one, never none.
      if (!absl::ConsumePrefix(&bearer, "Bearer ") || bearer.empty()) bearer = "-";
      caller = sources.authenticator->Authenticate(bearer, "");
    } else if (std::optional<Caller> signed_in =
                   session.empty() ? std::nullopt : sessions.Find(session, sources.clock->NowMillis())) {
      caller = *std::move(signed_in);
      if (absl::Status s = sources.authenticator->Revalidate(*caller); !s.ok()) {
        sessions.Remove(session);
        caller = s;
      }
    } else {
      caller = sources.authenticator->Authenticate("", "");
    }
    if (!caller.ok()) {
      if (absl::IsUnauthenticated(caller.status()) || absl::IsPermissionDenied(caller.status())) {
        response.set_header("WWW-Authenticate", "Bearer realm=\"stylesweep\"");
        Plain(response, 401,
              absl::StrCat(caller.status().message(),
                           "; send 'Authorization: Bearer TOKEN', or open /login in a browser"));
      } else {
        Plain(response, 503, std::string(caller.status().message()));
      }
      return Result::Handled;
    }
    if (absl::Status s = Authenticator::Authorize(*caller, roles, absl::StrCat("read ", request.path)); !s.ok()) {
      Plain(response, 403, std::string(s.message()));
      return Result::Handled;
    }
    return Result::Unhandled;
  };
  // Bodies and slow clients are dealt with first (connection_limits.h).
  server_->set_pre_routing_handler(limits_->Guard(authenticate));

  server_->set_exception_handler([](const httplib::Request& request, httplib::Response& response,
                                    std::exception_ptr error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("HTTP {}: {}", request.path, what);
    Plain(response, 500, what);
  });

  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& response) { Plain(response, 200, "ok"); });

  server_->Get("/readyz", [&sources](const httplib::Request&, httplib::Response& response) {
    if (sources.shutting_down && sources.shutting_down()) {
      Plain(response, 503, "shutting down");
      return;
    }
    if (absl::StatusOr<std::vector<RunCount>> counts = sources.store->CountRuns(); !counts.ok()) {
      Plain(response, 503, absl::StrCat("the database does not answer: ", counts.status().message()));
      return;
    }
    Plain(response, 200, "ready");
  });

  server_->Get("/metrics", [&sources](const httplib::Request&, httplib::Response& response) {
    ScrapeSources scrape;
    scrape.db_path = sources.db_path;
    scrape.now_ms = sources.clock->NowMillis();
    scrape.agent_lost_after_ms = sources.agent_lost_after_ms;
    scrape.process_start_seconds = sources.process_start_seconds;
    absl::StatusOr<std::string> text = ScrapeMetrics(*sources.store, *sources.metrics, scrape);
    if (!text.ok()) {
      Plain(response, 500, std::string(text.status().message()));
      return;
    }
    response.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
  });

  server_->Get("/login", [](const httplib::Request&, httplib::Response& response) {
    response.set_header("Content-Security-Policy", kLoginPolicy);
    response.set_content(kLoginPage, "text/html; charset=utf-8");
  });

  // The form's token arrives in the body, never in the address. A user's or
  // reader's token gets a session cookie (sessions.h) and goes to `next` (a
  // path on this server, else the dashboard).
  server_->Post("/login", [&sources, &sessions, tls](const httplib::Request& request, httplib::Response& response) {
    const std::string next = request.get_param_value("next");
    const std::string target = IsLocalPath(next) ? next : "/";
    if (absl::StatusOr<bool> required = sources.authenticator->Required(); required.ok() && !*required) {
      response.set_redirect(target, 303);
      return;
    }
    const std::string token = request.get_param_value("token");
    absl::StatusOr<Caller> caller = sources.authenticator->Authenticate(token.empty() ? "-" : token, "");
    if (!caller.ok()) {
      Plain(response, absl::IsUnauthenticated(caller.status()) ? 401 : 503, std::string(caller.status().message()));
      return;
    }
    if (absl::Status s = Authenticator::Authorize(*caller, RoleSet{Role::kUser, Role::kReader}, "open the dashboard");
        !s.ok()) {
      Plain(response, 403, std::string(s.message()));
      return;
    }
    absl::StatusOr<std::string> session = sessions.Create(*caller, sources.clock->NowMillis());
    if (!session.ok()) {
      Plain(response, 500, std::string(session.status().message()));
      return;
    }
    response.set_header("Set-Cookie", absl::StrCat(kSessionCookie, "=", *session, "; Path=/; Max-Age=", kSessionSeconds,
                                                   "; HttpOnly; SameSite=Strict", tls ? "; Secure" : ""));
    response.set_redirect(target, 303);
  });

  // Ends the session on the server too, not only in this browser.
  server_->Post("/logout", [&sessions, tls](const httplib::Request& request, httplib::Response& response) {
    if (const std::string session = CookieValue(request, kSessionCookie); !session.empty()) sessions.Remove(session);
    response.set_header("Set-Cookie", absl::StrCat(kSessionCookie, "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                                                   tls ? "; Secure" : ""));
    response.set_redirect("/login", 303);
  });

  server_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_header("Content-Security-Policy", kPagePolicy);
    response.set_content(std::string(DashboardPage()), "text/html; charset=utf-8");
  });

  server_->Get("/api/state", [&sources](const httplib::Request&, httplib::Response& response) {
    DashboardOptions options;
    options.now_ms = sources.clock->NowMillis();
    options.agent_lost_after_ms = sources.agent_lost_after_ms;
    absl::StatusOr<nlohmann::json> state = DashboardState(*sources.store, options);
    if (!state.ok()) {
      Plain(response, 500, std::string(state.status().message()));
      return;
    }
    response.set_content(state->dump(), "application/json");
  });

  server_->Get(R"(/api/snapshot/(\d{1,18}))", [&sources](const httplib::Request& request,
                                                         httplib::Response& response) {
    int64_t run_id = 0;
    if (!absl::SimpleAtoi(request.matches[1].str(), &run_id)) {
      Plain(response, 404, "no such run");
      return;
    }
    std::optional<int> step;
    if (request.has_param("step")) {
      int value = 0;
      if (!absl::SimpleAtoi(request.get_param_value("step"), &value) || value < 0) {
        Plain(response, 400, "step: expected a step number");
        return;
      }
      step = value;
    }
    absl::StatusOr<std::string> file = SnapshotFile(*sources.store, sources.artifacts_dir, run_id, step);
    if (!file.ok()) {
      Plain(response, absl::IsPermissionDenied(file.status()) ? 403 : absl::IsNotFound(file.status()) ? 404 : 500,
            std::string(file.status().message()));
      return;
    }
    absl::StatusOr<std::string> png = ReadFileToString(*file);
    if (!png.ok()) {
      Plain(response, 404, std::string(png.status().message()));
      return;
    }
    response.set_content(*png, "image/png");
  });
}

ConnectionLimitCounts HttpServer::limit_counts() const { return limits_->counts(); }

void HttpServer::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  });
}

HttpServer::~HttpServer() { Shutdown(); }

}  // namespace stylesweep
