#ifndef STYLESWEEP_RPC_TRANSPORT_H_
#define STYLESWEEP_RPC_TRANSPORT_H_

// What every gRPC surface of stylesweep shares: TLS and bearer-token
// settings, the check that refuses to expose an unprotected server beyond
// loopback, and absl::Status <-> grpc::Status mapping.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

struct ServerSecurity {
  std::string tls_cert_file;  // PEM; with tls_key_file enables TLS
  std::string tls_key_file;
  // PEM CA: clients may present a certificate it signed (mutual TLS); the
  // certificate's subject common name names the agent it may act as.
  std::string tls_client_ca_file;
  // The shared token: non-empty, a call carrying "authorization: Bearer
  // <token>" may do anything (coordinator/auth/authenticator.h).
  std::string token;
  // Scoped tokens exist (`stylesweep tokens`): calls need a credential.
  bool scoped_tokens = false;
  bool insecure = false;      // explicitly allow plaintext/no credentials beyond loopback
};

struct ClientSecurity {
  bool tls = false;
  std::string tls_ca_file;    // PEM roots; empty with tls: the system roots
  // PEM client certificate and key for a coordinator that asks for one
  // (--tls-client-ca there).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string token;
};

// Whether a server with these settings demands a credential of its callers.
bool HasCredentials(const ServerSecurity& security);

// True when the host part of "HOST:PORT" or "[V6]:PORT" is an IP literal in
// 127.0.0.0/8, ::1 (or ::ffff:127.x.y.z), or exactly "localhost". Any other
// name is not loopback, whatever it starts with: names resolve where their
// owner chooses.
bool IsLoopbackAddress(const std::string& host_port);

// The rule every server surface (gRPC, HTTP) follows: OK on loopback, or
// with both TLS and credentials (HasCredentials), or with
// security.insecure; otherwise
// FailedPrecondition naming the address, the `risk` ("submit work and read
// results") and the flags to add.
absl::Status CheckExposure(const std::string& listen, const ServerSecurity& security, const std::string& risk);

// Server credentials for `listen`. Refuses (CheckExposure) a non-loopback
// address without both TLS and credentials, unless security.insecure, and TLS
// files that do not make a key pair (LoadTlsKeyPair, tls_files.h).
// `processor` (may be null) sees every call's headers before its message is
// read; it is installed on TLS and on plaintext loopback ports (gRPC's
// local credentials), but cannot be on a plaintext port beyond loopback
// (--insecure), where handlers must check each call themselves.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const std::string& listen, const ServerSecurity& security,
    std::shared_ptr<grpc::AuthMetadataProcessor> processor = nullptr);

// A channel to `target` with TLS when asked and large-enough message limits
// for images.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target, const ClientSecurity& security);

// Adds the bearer token (if any) and a deadline `timeout_ms` from now.
void PrepareContext(grpc::ClientContext& context, const ClientSecurity& security, int64_t timeout_ms);

// Reads a token from a file (first line, trimmed) or, with an empty path, from
// the STYLESWEEP_TOKEN environment variable. Empty when neither is set.
absl::StatusOr<std::string> LoadToken(const std::string& token_file);

// A call that could not reach the coordinator at `target` (UNAVAILABLE), as
// the user should hear it: Unavailable, "cannot reach the coordinator at
// TARGET (gRPC's words); " and what those words point to. A plaintext client
// whose connection a TLS server closed is told to add --tls (and --tls-ca);
// a TLS client answered in plaintext, to drop them; an untrusted or
// misnamed certificate, which --tls-ca to pass; a refused connection, to
// check that the coordinator runs there. Anything else asks whether it is
// running.
absl::Status UnreachableError(const grpc::Status& status, const std::string& target, const ClientSecurity& security);

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Largest message either side accepts: snapshots and input images travel whole.
inline constexpr int kMaxMessageBytes = 64 * 1024 * 1024;

}  // namespace stylesweep

#endif  // STYLESWEEP_RPC_TRANSPORT_H_
