#include "rpc/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "rpc/tls_files.h"

namespace stylesweep {
namespace {

std::string HostOf(const std::string& host_port) {
  if (absl::StartsWith(host_port, "[")) {
    const size_t close = host_port.find(']');
    return close == std::string::npos ? host_port : host_port.substr(1, close - 1);
  }
  const size_t colon = host_port.rfind(':');
  return colon == std::string::npos ? host_port : host_port.substr(0, colon);
}

// Compares without an early exit, so response timing says nothing about how
// much of a guessed token was right (only whether its length was).
bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool IsLoopbackAddress(const std::string& host_port) {
  const std::string host = HostOf(host_port);
  // Decided by address, never by how a name looks: "127.evil.example" or
  // "127.0.0.1.nip.io" resolve wherever their owner likes. "localhost" is the
  // one name trusted, as every resolver maps it to loopback.
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z is the IPv4 loopback seen through an IPv6 socket.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status CheckExposure(const std::string& listen, const ServerSecurity& security, const std::string& risk) {
  const bool tls = !security.tls_cert_file.empty() || !security.tls_key_file.empty();
  if (!IsLoopbackAddress(listen) && !security.insecure && (!tls || security.token.empty())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", listen, " without TLS and a token: anyone who can reach it could ", risk,
        ". Add --tls-cert, "
        "--tls-key and --token-file (or STYLESWEEP_TOKEN), listen on 127.0.0.1, or pass --insecure to accept the "
        "risk"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const std::string& listen,
                                                                               const ServerSecurity& security) {
  if (absl::Status s = CheckExposure(listen, security, "submit work and read results"); !s.ok()) return s;
  const bool tls = !security.tls_cert_file.empty() || !security.tls_key_file.empty();
  if (!tls) return grpc::InsecureServerCredentials();
  // Checked here: gRPC would only fail to start, as for a taken address.
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(security.tls_cert_file, security.tls_key_file);
  if (!pair.ok()) return pair.status();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({pair->key_pem, pair->cert_pem});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target, const ClientSecurity& security) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (security.tls) {
    grpc::SslCredentialsOptions options;
    if (!security.tls_ca_file.empty()) {
      auto roots = ReadFileToString(security.tls_ca_file);
      if (!roots.ok()) return roots.status();
      options.pem_root_certs = *roots;
    }
    credentials = grpc::SslCredentials(options);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after a coordinator restart instead of gRPC's default
  // back-off of up to two minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(target, credentials, args);
}

void PrepareContext(grpc::ClientContext& context, const ClientSecurity& security, int64_t timeout_ms) {
  if (!security.token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", security.token));
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

grpc::Status CheckToken(const grpc::ServerContext& context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this coordinator requires a token: pass --token-file or set STYLESWEEP_TOKEN");
  }
  const std::string presented(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(presented, absl::StrCat("Bearer ", token))) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong token");
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::string> LoadToken(const std::string& token_file) {
  std::string token;
  if (!token_file.empty()) {
    auto text = ReadFileToString(token_file);
    if (!text.ok()) return text.status();
    token = *text;
  } else if (const char* env = std::getenv("STYLESWEEP_TOKEN")) {
    token = env;
  }
  const size_t newline = token.find('\n');
  if (newline != std::string::npos) token.resize(newline);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (!token_file.empty() && token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file '", token_file, "' is empty"));
  }
  return token;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace stylesweep
