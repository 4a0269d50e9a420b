#include "coordinator/auth/grpc_auth.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "rpc/transport.h"

namespace stylesweep {
namespace {

constexpr absl::string_view kServicePrefix = "/stylesweep.v1.Coordinator/";

absl::string_view BearerOf(absl::string_view authorization) {
  return absl::StartsWith(authorization, "Bearer ") ? authorization.substr(7) : absl::string_view();
}

// The common name of the client certificate the TLS handshake verified
// (present only with --tls-client-ca).
std::string CertificateName(const grpc::AuthContext& context) {
  for (const grpc::string_ref& value : context.FindPropertyValues("x509_common_name")) {
    return std::string(value.data(), value.size());
  }
  return "";
}

absl::StatusOr<Caller> Check(Authenticator& authenticator, absl::string_view path, absl::string_view authorization,
                             const std::string& certificate_name) {
  const std::optional<RoleSet> roles = RolesForRpc(path);
  if (!roles.has_value()) return absl::UnimplementedError(absl::StrCat("no method ", path.substr(0, 128)));
  if (roles->empty()) return Caller{};
  absl::StatusOr<Caller> caller = authenticator.Authenticate(BearerOf(authorization), certificate_name);
  if (!caller.ok()) return caller.status();
  absl::string_view method = path;
  absl::ConsumePrefix(&method, kServicePrefix);
  if (absl::Status s = Authenticator::Authorize(*caller, *roles, absl::StrCat("call ", method)); !s.ok()) return s;
  return caller;
}

}  // namespace

grpc::Status RoleCheckProcessor::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                         OutputMetadata*, OutputMetadata*) {
  absl::string_view path, authorization;
  for (const auto& [key, value] : auth_metadata) {
    if (key == ":path") path = absl::string_view(value.data(), value.size());
    if (key == "authorization") authorization = absl::string_view(value.data(), value.size());
  }
  return ToGrpcStatus(Check(authenticator_, path, authorization, CertificateName(*context)).status());
}

absl::StatusOr<Caller> CallerOf(const grpc::ServerContext& context, Authenticator& authenticator,
                                absl::string_view method) {
  absl::string_view authorization;
  if (auto it = context.client_metadata().find("authorization"); it != context.client_metadata().end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::string certificate_name;
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) certificate_name = CertificateName(*auth);
  return Check(authenticator, absl::StrCat(kServicePrefix, method), authorization, certificate_name);
}

}  // namespace stylesweep
