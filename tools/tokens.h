#ifndef STYLESWEEP_TOOLS_TOKENS_H_
#define STYLESWEEP_TOOLS_TOKENS_H_

// `stylesweep tokens create|list|revoke`: scoped credentials, managed on the
// coordinator's database file (whoever may read that file administers the
// coordinator; no RPC can mint a token). A running coordinator sees a new or
// revoked token on its next call.

#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"

namespace stylesweep {

struct TokenRequest {
  std::string db;
  std::string name;
  std::string role;         // agent, user or reader
  std::string agent_names;  // agents: comma-separated names or PREFIX*
  std::string out;          // non-empty: write the token here (0600) instead of returning it
};

// Creates the credential and returns the token, which is shown once and
// never stored. With request.out, writes it there (owner-only, atomically)
// and returns it too.
absl::StatusOr<std::string> CreateToken(const TokenRequest& request, const Clock& clock);

// A table (or JSON lines) of every credential: id, name, role, agents,
// created, last used, revoked. Never a secret or a hash.
absl::StatusOr<std::string> ListTokens(const std::string& db, bool json);

// Revokes by name or id; a line saying what happened.
absl::StatusOr<std::string> RevokeToken(const std::string& db, const std::string& id_or_name, const Clock& clock);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_TOKENS_H_
