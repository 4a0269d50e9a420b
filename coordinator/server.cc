#include "coordinator/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/text.h"
#include "coordinator/auth/grpc_auth.h"
#include "coordinator/rpc/coordinator_service.h"
#include "coordinator/rpc/metrics_interceptor.h"

namespace stylesweep {
namespace {

// The name the coordinator's service reports under in the gRPC health
// service (besides "", the whole server).
constexpr char kServiceName[] = "stylesweep.v1.Coordinator";

absl::Status ConfigError(const std::string& path, const YAML::Node& node, const std::string& key,
                         const std::string& message) {
  const YAML::Mark mark = node.Mark();
  return absl::InvalidArgumentError(
      absl::StrCat(path, ":", mark.line + 1, ":", mark.column + 1, ": ", key, ": ", message));
}

}  // namespace

absl::Status LoadCoordinatorConfig(const std::string& path, CoordinatorConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("cannot read config file '", path, "'"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": not valid YAML: ", e.msg));
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of settings"));
  const std::vector<std::string> keys = {"listen",   "http",    "db",         "artifacts", "lease_seconds",
                                         "heartbeat_seconds", "tls_cert", "tls_key", "tls_client_ca", "token_file", "insecure",
                                         "max_runs_per_sweep", "quarantine_after"};
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    try {
      if (key == "listen") {
        config.listen = value.as<std::string>();
      } else if (key == "http") {
        config.http = value.as<std::string>();
      } else if (key == "db") {
        config.db = value.as<std::string>();
      } else if (key == "artifacts") {
        config.artifacts = value.as<std::string>();
      } else if (key == "lease_seconds" || key == "heartbeat_seconds") {
        const double seconds = value.as<double>();
        if (!(seconds > 0)) return ConfigError(path, value, key, "must be positive");
        (key == "lease_seconds" ? config.scheduler.lease_ms : config.scheduler.heartbeat_ms) =
            static_cast<int64_t>(seconds * 1000);
      } else if (key == "tls_cert") {
        config.security.tls_cert_file = value.as<std::string>();
      } else if (key == "tls_key") {
        config.security.tls_key_file = value.as<std::string>();
      } else if (key == "tls_client_ca") {
        config.security.tls_client_ca_file = value.as<std::string>();
      } else if (key == "token_file") {
        auto token = LoadToken(value.as<std::string>());
        if (!token.ok()) return ConfigError(path, value, key, std::string(token.status().message()));
        config.security.token = *token;
      } else if (key == "insecure") {
        config.security.insecure = value.as<bool>();
      } else if (key == "quarantine_after") {
        const int n = value.as<int>();
        if (n < 0) return ConfigError(path, value, key, "must be 0 (never) or more");
        config.scheduler.quarantine_after = n;
      } else if (key == "max_runs_per_sweep") {
        // Refuses a grid or run_cap beyond this before anything is stored.
        const long long n = value.as<long long>();
        if (n < 1 || static_cast<size_t>(n) > kMaxGridSize) {
          return ConfigError(path, value, key, absl::StrCat("must be from 1 to ", kMaxGridSize));
        }
        config.scheduler.max_runs_per_sweep = static_cast<size_t>(n);
      } else {
        std::string message = "unknown key";
        if (auto close = ClosestMatch(key, keys); !close.empty()) absl::StrAppend(&message, " (did you mean '", close, "'?)");
        return ConfigError(path, entry.first, key, message);
      }
    } catch (const YAML::Exception&) {
      return ConfigError(path, value, key, "has the wrong type");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(const CoordinatorConfig& config) {
  const double start_seconds = SystemClock().NowMillis() / 1000.0;
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer());
  server->config_ = config;
  // What the coordinator stores (the database, images, snapshots) is
  // owner-only: directories it creates 0700, files 0600.
  if (config.db != ":memory:") {
    const auto parent = std::filesystem::absolute(config.db).parent_path();
    (void)CreateDirectories(parent.string(), FileAccess::kOwnerOnly);  // opening the database reports a failure
  }
  auto store = OpenSqliteStore(config.db);
  if (!store.ok()) return store.status();
  server->store_ = std::move(*store);
  // Scoped tokens live in the database: whether any exist decides, with the
  // flags, whether the addresses may be exposed.
  ServerSecurity& security = server->config_.security;
  absl::StatusOr<bool> scoped = server->store_->HasCredentials();
  if (!scoped.ok()) return scoped.status();
  security.scoped_tokens = *scoped;
  if (!config.http.empty()) {
    if (absl::Status s = CheckExposure(config.http, security, "read every sweep, run and image"); !s.ok()) {
      return s;
    }
  }
  AuthSettings auth;
  auth.shared_token = security.token;
  // With no credential configured, callers need none only where nobody
  // else can reach: loopback, or where the user said so (--insecure).
  const bool loopback = IsLoopbackAddress(config.listen) && (config.http.empty() || IsLoopbackAddress(config.http));
  auth.open_without_credentials = security.tls_client_ca_file.empty() && (loopback || security.insecure);
  server->authenticator_ = std::make_unique<Authenticator>(*server->store_, SystemClock(), auth);
  auto credentials =
      MakeServerCredentials(config.listen, security, std::make_shared<RoleCheckProcessor>(*server->authenticator_));
  if (!credentials.ok()) return credentials.status();
  if (!security.token.empty()) {
    spdlog::warn(
        "a shared token (--token-file or STYLESWEEP_TOKEN) lets whoever holds it do anything, agents included: give "
        "each agent host and user a scoped token instead (`stylesweep tokens create`)");
  }
  if (!IsLoopbackAddress(config.listen) && security.tls_cert_file.empty() && security.insecure) {
    spdlog::warn("serving plaintext beyond loopback (--insecure): credentials travel in the clear and calls are "
                 "read before they are checked");
  }
  server->artifacts_ = std::make_unique<ArtifactStore>(std::filesystem::absolute(config.artifacts).string());
  server->scheduler_ =
      std::make_unique<Scheduler>(*server->store_, *server->artifacts_, SystemClock(), config.scheduler);
  // Runs still RUNNING were left by a coordinator that stopped (or crashed)
  // on this database. Their agents may still be at work, holding results
  // they could not deliver: give them a full lease, and at least
  // kRestartGraceMs (reconnecting takes them a few seconds), to renew before
  // their runs count as lost.
  const int64_t grace_ms = std::max(config.scheduler.lease_ms, kRestartGraceMs);
  absl::StatusOr<int> resumed = server->store_->ExtendRunningLeases(SystemClock().NowMillis() + grace_ms);
  if (!resumed.ok()) return resumed.status();
  if (*resumed > 0) {
    spdlog::info("{} run{} running when the coordinator last stopped; {} {} s to report back", *resumed,
                 *resumed == 1 ? " was" : "s were", *resumed == 1 ? "its agent has" : "their agents have",
                 grace_ms / 1000.0);
  }
  server->service_ = std::make_unique<CoordinatorService>(*server->scheduler_, *server->store_,
                                                          server->artifacts_->root(), *server->authenticator_);

  // grpc.health.v1.Health and server reflection, so that standard tools
  // (grpc_health_probe, grpcurl) work. Both answer without the token:
  // health says only SERVING or NOT_SERVING (probes carry no credentials),
  // and reflection only describes the protocol, which is public; every
  // Coordinator call still needs the token. Both are process-wide switches
  // read when a ServerBuilder is made.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, *credentials, &port);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(server->metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen, ": the address is taken or not valid on this machine"));
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(kServiceName, true);
  }
  const size_t colon = config.listen.rfind(':');
  server->address_ = absl::StrCat(config.listen.substr(0, colon), ":", port);
  server->reaper_ = std::thread([s = server.get()] { s->ReapLoop(); });
  spdlog::info("coordinator listening on {} ({}{}), database {}, artifacts {}", server->address_,
               security.tls_cert_file.empty()           ? "plaintext"
               : security.tls_client_ca_file.empty()    ? "TLS"
                                                         : "mutual TLS",
               auth.open_without_credentials && !HasCredentials(security) ? ", no credentials needed on loopback"
                                                                          : ", credentials required",
               config.db, server->artifacts_->root());

  if (!config.http.empty()) {
    HttpOptions http_options{config.http, security};
    HttpSources sources;
    sources.store = server->store_.get();
    sources.authenticator = server->authenticator_.get();
    sources.metrics = &server->metrics_;
    sources.clock = &SystemClock();
    sources.artifacts_dir = server->artifacts_->root();
    sources.db_path = config.db;
    sources.agent_lost_after_ms = config.scheduler.lease_ms;
    sources.process_start_seconds = start_seconds;
    sources.shutting_down = [s = server.get()] { return s->ShuttingDown(); };
    auto http = HttpServer::Start(http_options, std::move(sources));
    if (!http.ok()) return http.status();  // ~CoordinatorServer stops the rest
    server->http_ = std::move(*http);
    spdlog::info("dashboard and /metrics on {}://{}/", server->http_->tls() ? "https" : "http",
                 server->http_->address());
  }
  return server;
}

void CoordinatorServer::ReapLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(1000, config_.scheduler.lease_ms / 4)));
    if (stopping_) break;
    lock.unlock();
    if (absl::Status s = scheduler_->ExpireLeases(); !s.ok()) spdlog::error("expiring leases: {}", s.ToString());
    lock.lock();
  }
}

void CoordinatorServer::Shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      // Someone else is shutting down: return only once they are done, so a
      // caller may destroy the server right after.
      stop_cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (server_) {
    if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  // After the gRPC calls: /readyz keeps saying 503 while they finish.
  if (http_) http_->Shutdown();
  if (reaper_.joinable()) reaper_.join();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  stop_cv_.notify_all();
}

bool CoordinatorServer::ShuttingDown() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace stylesweep
