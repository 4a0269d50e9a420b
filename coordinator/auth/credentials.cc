#include "coordinator/auth/credentials.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/hash.h"

namespace stylesweep {
namespace {

constexpr size_t kSecretBytes = 32;
constexpr size_t kSaltBytes = 16;
constexpr size_t kMaxNameLength = 64;

std::string HashSecret(absl::string_view salt, absl::string_view secret) {
  return Sha256Hex(absl::StrCat("stylesweep credential\n", salt, "\n", secret));
}

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !absl::ascii_isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

absl::StatusOr<NewCredential> MakeCredential(const std::string& name, const std::string& role,
                                             const std::string& agent_names, int64_t now_ms) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "credential name '", name.substr(0, kMaxNameLength),
        "': expected 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"));
  }
  const std::optional<Role> parsed = ParseRole(role);
  if (!parsed.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("role '", role.substr(0, 32), "': expected agent, user or reader"));
  }
  std::vector<std::string> names;
  for (absl::string_view part : absl::StrSplit(agent_names, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    absl::string_view stem = part;
    const bool prefix = absl::ConsumeSuffix(&stem, "*");
    if (!(prefix && stem.empty()) && !ValidName(stem)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent name '", part.substr(0, kMaxNameLength),
          "': expected a name of letters, digits, '.', '_' or '-', or PREFIX* for every name starting with PREFIX"));
    }
    names.emplace_back(part);
  }
  if (*parsed == Role::kAgent && names.empty()) {
    return absl::InvalidArgumentError(
        "an agent credential names the agents it may act as (--agents gpu-01,gpu-02 or --agents 'gpu-*')");
  }
  if (*parsed != Role::kAgent && !names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("only agent credentials name agents; this one is for a ", role));
  }
  absl::StatusOr<std::string> secret = RandomHex(kSecretBytes);
  if (!secret.ok()) return secret.status();
  absl::StatusOr<std::string> salt = RandomHex(kSaltBytes);
  if (!salt.ok()) return salt.status();
  NewCredential made;
  made.record.name = name;
  made.record.role = role;
  made.record.agent_names = absl::StrJoin(names, ",");
  made.record.salt = *salt;
  made.record.secret_hash = HashSecret(*salt, *secret);
  made.record.created_ms = now_ms;
  made.secret = *std::move(secret);
  return made;
}

std::string FormatToken(int64_t id, absl::string_view secret) { return absl::StrCat("ssw_", id, "_", secret); }

absl::StatusOr<ParsedToken> ParseToken(absl::string_view token) {
  absl::string_view rest = token;
  ParsedToken parsed;
  const size_t underscore = rest.find('_', 4);
  if (!absl::ConsumePrefix(&rest, "ssw_") || underscore == absl::string_view::npos ||
      !absl::SimpleAtoi(token.substr(4, underscore - 4), &parsed.id) || parsed.id <= 0) {
    return absl::InvalidArgumentError("not a stylesweep token");
  }
  parsed.secret = std::string(token.substr(underscore + 1));
  if (parsed.secret.size() != kSecretBytes * 2) return absl::InvalidArgumentError("not a stylesweep token");
  return parsed;
}

bool SecretMatches(const CredentialRecord& credential, absl::string_view secret) {
  return ConstantTimeEquals(HashSecret(credential.salt, secret), credential.secret_hash);
}

bool AgentNameAllowed(absl::string_view agent_names, absl::string_view agent) {
  if (agent.empty()) return false;
  for (absl::string_view pattern : absl::StrSplit(agent_names, ',', absl::SkipEmpty())) {
    if (absl::ConsumeSuffix(&pattern, "*")) {
      if (absl::StartsWith(agent, pattern)) return true;
    } else if (pattern == agent) {
      return true;
    }
  }
  return false;
}

}  // namespace stylesweep
