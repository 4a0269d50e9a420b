#ifndef STYLESWEEP_COORDINATOR_HTTP_SESSIONS_H_
#define STYLESWEEP_COORDINATOR_HTTP_SESSIONS_H_

// Dashboard sign-ins. Signing in with a token makes a session: a random id
// the browser keeps in a cookie, standing for the token's credential until
// it expires here (whatever the browser does with the cookie), is signed out,
// or its credential is revoked (checked on every request). The cookie never
// holds anything the gRPC port would accept. Sessions live in memory: a
// coordinator restart signs everyone out.
//
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/auth/authenticator.h"

namespace stylesweep {

class SessionTable {
 public:
  // `lifetime_ms`: how long a session lasts from sign-in. `capacity`: the
  // most kept at once; beyond it the one closest to expiring goes first.
  SessionTable(int64_t lifetime_ms, size_t capacity) : lifetime_ms_(lifetime_ms), capacity_(capacity) {}

  // A new session for `caller`, as of `now_ms`: its id (64 hex digits).
  absl::StatusOr<std::string> Create(const Caller& caller, int64_t now_ms);
  // The caller a live session stands for; nullopt for an unknown, expired
  // or signed-out id (an expired one is dropped).
  std::optional<Caller> Find(const std::string& id, int64_t now_ms);
  void Remove(const std::string& id);
  size_t size() const;

 private:
  struct Session {
    Caller caller;
    int64_t expires_ms = 0;
  };
  const int64_t lifetime_ms_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_SESSIONS_H_
