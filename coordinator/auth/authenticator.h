#ifndef STYLESWEEP_COORDINATOR_AUTH_AUTHENTICATOR_H_
#define STYLESWEEP_COORDINATOR_AUTH_AUTHENTICATOR_H_

// Turns what a call presents (a bearer token, a verified client certificate)
// into a Caller, and decides whether that caller may do what it asks. Used
// by the gRPC service and the HTTP server alike, so both follow one table
// (roles.h) and one set of credentials.
//
// Credentials a coordinator accepts:
//   - scoped tokens (`stylesweep tokens create`), looked up on every call,
//     so a revocation takes effect on the next one;
//   - the shared token (--token-file / STYLESWEEP_TOKEN on the
//     coordinator): every role, every agent name; kept for small setups;
//   - with --tls-client-ca, a client certificate that CA signed: the agent
//     role for the agent its subject's common name names.
// A coordinator with none of these (and never any scoped token) listens on
// loopback only (rpc/transport.h) and lets every local caller do anything.
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "coordinator/auth/roles.h"
#include "coordinator/store/store.h"

namespace stylesweep {

struct Caller {
  // Identifies the credential: "token:NAME" for a scoped token, "shared
  // token", "certificate:CN", or "" for a caller on an open coordinator. An
  // agent registered under one credential answers only to it.
  std::string credential;
  int64_t credential_id = 0;  // scoped tokens only
  RoleSet roles;
  // The agent names it may act as: comma-separated names or PREFIX*; "*"
  // for any.
  std::string agent_names;
};

struct AuthSettings {
  std::string shared_token;  // empty: none
  // No credential configured: every caller may do anything. The server sets
  // this only for loopback (or --insecure); once a scoped token exists it no
  // longer holds.
  bool open_without_credentials = true;
};

class Authenticator {
 public:
  Authenticator(Store& store, const Clock& clock, AuthSettings settings);

  // `bearer`: the token after "Bearer " (empty: none). `certificate_name`:
  // the common name of a client certificate the transport verified (empty:
  // none). Unauthenticated, naming what to do, when neither proves a
  // credential in force.
  absl::StatusOr<Caller> Authenticate(absl::string_view bearer, absl::string_view certificate_name);

  // Checks an earlier caller again (a dashboard session): PermissionDenied
  // once its token is revoked.
  absl::Status Revalidate(const Caller& caller);

  // OK when the caller holds one of `roles` (empty `roles`: anyone).
  // PermissionDenied naming the credential, its roles and `what` otherwise.
  static absl::Status Authorize(const Caller& caller, RoleSet roles, absl::string_view what);

  // OK when the caller may act as agent `name`.
  static absl::Status AuthorizeAgent(const Caller& caller, absl::string_view name);

  // Whether calls need a credential now (some credential is configured).
  absl::StatusOr<bool> Required();

 private:
  absl::StatusOr<Caller> FromToken(absl::string_view bearer);
  void NoteUse(int64_t credential_id);

  Store& store_;
  const Clock& clock_;
  const AuthSettings settings_;
  std::atomic<bool> has_scoped_{false};  // once true, stays true
  absl::Mutex mu_;
  std::map<int64_t, int64_t> noted_ms_ ABSL_GUARDED_BY(mu_);  // last use written, by credential
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_AUTH_AUTHENTICATOR_H_
