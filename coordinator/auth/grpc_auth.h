#ifndef STYLESWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_
#define STYLESWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_

// The role table (roles.h) enforced on the gRPC port, twice:
//   - RoleCheckProcessor runs in the transport as soon as a call's headers
//     arrive, before its message is read: a call without a credential in
//     force for its method is refused having cost only its headers (the
//     transport's flow-control window bounds what the peer could push).
//   - CallerOf, in each handler, authenticates the call again and returns
//     who made it, for per-agent checks. On a plaintext port opened beyond
//     loopback with --insecure, where gRPC allows no processor, it is the
//     only check.

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/auth_metadata_processor.h>


#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "coordinator/auth/authenticator.h"

namespace stylesweep {

class RoleCheckProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit RoleCheckProcessor(Authenticator& authenticator) : authenticator_(authenticator) {}
  // Reads the store: run on gRPC's own threads, not the transport's.
  bool IsBlocking() const override { return true; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata, OutputMetadata* response_metadata) override;

 private:
  Authenticator& authenticator_;
};

// Authenticates the call and checks that its credential may call `method`
// (e.g. "SubmitSweep"). UNAUTHENTICATED or PERMISSION_DENIED otherwise.
absl::StatusOr<Caller> CallerOf(const grpc::ServerContext& context, Authenticator& authenticator,
                                absl::string_view method);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_AUTH_GRPC_AUTH_H_
