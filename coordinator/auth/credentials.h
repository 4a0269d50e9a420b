#ifndef STYLESWEEP_COORDINATOR_AUTH_CREDENTIALS_H_
#define STYLESWEEP_COORDINATOR_AUTH_CREDENTIALS_H_

// Scoped tokens: how they are made, written and checked. A token reads
// "ssw_<id>_<secret>": the id finds its record, the secret (32 random bytes,
// hex) proves it. The store keeps a random salt and SHA-256(salt, secret)
// only; a secret of 256 random bits needs no slow hash to resist guessing,
// and the salt keeps equal secrets from showing as equal hashes.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "coordinator/auth/roles.h"
#include "coordinator/store/store.h"

namespace stylesweep {

struct NewCredential {
  CredentialRecord record;  // id still 0: the store assigns it
  std::string secret;       // hex; shown once, never stored
};

// Checks the name (1-64 of [A-Za-z0-9._-], starting with a letter or digit),
// the role and, for agents, the names (comma-separated, each a name of the
// same alphabet or PREFIX*; required for agents, refused for other roles),
// then draws a secret and salt. InvalidArgument naming what is wrong.
absl::StatusOr<NewCredential> MakeCredential(const std::string& name, const std::string& role,
                                             const std::string& agent_names, int64_t now_ms);

// "ssw_<id>_<secret>".
std::string FormatToken(int64_t id, absl::string_view secret);

struct ParsedToken {
  int64_t id = 0;
  std::string secret;
};
// Splits a scoped token; nullopt-like InvalidArgument for anything else
// (a shared token, a typo).
absl::StatusOr<ParsedToken> ParseToken(absl::string_view token);

// Whether `secret` is the credential's, in time that does not depend on how
// much of it is right.
bool SecretMatches(const CredentialRecord& credential, absl::string_view secret);

// Whether an agent credential's names (comma-separated names or PREFIX*)
// allow `agent`.
bool AgentNameAllowed(absl::string_view agent_names, absl::string_view agent);

// Compares without an early exit (only the lengths' equality shows).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_AUTH_CREDENTIALS_H_
