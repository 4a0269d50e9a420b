#include "rpc/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/ascii.h"
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

bool HasCredentials(const ServerSecurity& security) {
  return !security.token.empty() || security.scoped_tokens || !security.tls_client_ca_file.empty();
}

absl::Status CheckExposure(const std::string& listen, const ServerSecurity& security, const std::string& risk) {
  const bool tls = !security.tls_cert_file.empty() || !security.tls_key_file.empty();
  if (!IsLoopbackAddress(listen) && !security.insecure && (!tls || !HasCredentials(security))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", listen, " without TLS and credentials: anyone who can reach it could ", risk,
        ". Add --tls-cert and --tls-key, and create tokens with `stylesweep tokens create` (or give a shared "
        "--token-file), listen on 127.0.0.1, or pass --insecure to accept the risk"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& listen, const ServerSecurity& security, std::shared_ptr<grpc::AuthMetadataProcessor> processor) {
  if (absl::Status s = CheckExposure(listen, security, "submit work and read results"); !s.ok()) return s;
  const bool tls = !security.tls_cert_file.empty() || !security.tls_key_file.empty();
  if (!tls && !security.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)");
  }
  if (!tls) {
    if (!IsLoopbackAddress(listen)) return grpc::InsecureServerCredentials();
    // Plaintext as before on the wire, but gRPC's local credentials (which
    // accept loopback peers only) run the processor.
    std::shared_ptr<grpc::ServerCredentials> local = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    if (processor) local->SetAuthMetadataProcessor(processor);
    return local;
  }
  // Checked here: gRPC would only fail to start, as for a taken address.
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(security.tls_cert_file, security.tls_key_file);
  if (!pair.ok()) return pair.status();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({pair->key_pem, pair->cert_pem});
  if (!security.tls_client_ca_file.empty()) {
    auto ca = ReadFileToString(security.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    // Optional: users and readers come with tokens; a certificate, when
    // presented, must verify.
    options.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  if (processor) credentials->SetAuthMetadataProcessor(processor);
  return credentials;
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
    if (!security.tls_cert_file.empty() || !security.tls_key_file.empty()) {
      if (security.tls_cert_file.empty() || security.tls_key_file.empty()) {
        return absl::InvalidArgumentError("a client certificate needs both --tls-cert and --tls-key");
      }
      auto cert = ReadFileToString(security.tls_cert_file);
      if (!cert.ok()) return cert.status();
      auto key = ReadFileToString(security.tls_key_file);
      if (!key.ok()) return key.status();
      options.pem_cert_chain = *cert;
      options.pem_private_key = *key;
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

absl::Status UnreachableError(const grpc::Status& status, const std::string& target, const ClientSecurity& security) {
  const std::string& detail = status.error_message();
  const std::string lower = absl::AsciiStrToLower(detail);
  auto says = [&lower](std::initializer_list<absl::string_view> words) {
    for (absl::string_view word : words) {
      if (absl::StrContains(lower, absl::AsciiStrToLower(word))) return true;
    }
    return false;
  };
  std::string hint;
  if (says({"Connection refused"})) {
    hint = "nothing listens there: is stylesweep-coordinator running, and on this address?";
  } else if (says({"DNS resolution failed", "Name or service not known", "not known"})) {
    hint = "its host name does not resolve: check the address";
  } else if (security.tls && says({"wrong version number", "WRONG_VERSION_NUMBER", "packet length too long",
                                   "http request", "record layer failure"})) {
    hint = absl::StrCat("it does not answer in TLS: it may serve plaintext, so drop --tls",
                        security.tls_ca_file.empty() ? "" : " and --tls-ca",
                        " (or start it with --tls-cert and --tls-key)");
  } else if (security.tls && says({"certificate verify failed", "CERTIFICATE_VERIFY_FAILED", "self signed",
                                   "self-signed", "unable to get local issuer"})) {
    hint = security.tls_ca_file.empty()
               ? "its certificate is not signed by an authority this machine trusts: pass --tls-ca with the "
                 "certificate of the one that signed it (for a self-signed certificate, the certificate itself)"
               : absl::StrCat("its certificate is not signed by the authority in --tls-ca ", security.tls_ca_file,
                              ": pass the certificate of the one that signed it");
  } else if (security.tls && says({"Peer name", "not in peer certificate", "hostname mismatch"})) {
    hint = absl::StrCat("its certificate does not name ", target,
                        ": connect by a name or address the certificate lists");
  } else if (!security.tls && says({"Socket closed", "Connection reset", "handshake", "end of file",
                                    "Broken pipe"})) {
    // A TLS server reads the plaintext client's first bytes as a broken
    // handshake and hangs up, which gRPC reports only as a closed socket.
    hint = "it closed the connection as it opened, as a coordinator serving TLS does to a plaintext client: "
           "the coordinator may require TLS, so add --tls (and --tls-ca CA.pem when its certificate is not from "
           "an authority this machine trusts)";
  } else {
    hint = "is stylesweep-coordinator running, and on this address?";
  }
  return absl::UnavailableError(absl::StrCat("cannot reach the coordinator at ", target, " (", detail, "); ", hint));
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
