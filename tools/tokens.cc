#include "tools/tokens.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "coordinator/auth/credentials.h"
#include "coordinator/store/store.h"
#include "nlohmann/json.hpp"
#include "tools/terminal_text.h"

namespace stylesweep {
namespace {

// The database must already exist: a typo in --db must not mint a token in
// a new, empty database no coordinator reads.
absl::StatusOr<std::unique_ptr<Store>> OpenExisting(const std::string& db, bool read_only) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec)) {
    return absl::NotFoundError(
        absl::StrCat("no database at '", db, "': give the coordinator's --db (it creates the file when it starts)"));
  }
  SqliteStoreOptions options;
  options.read_only = read_only;
  return OpenSqliteStore(db, options);
}

std::string When(int64_t ms) {
  if (ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<std::string> CreateToken(const TokenRequest& request, const Clock& clock) {
  absl::StatusOr<NewCredential> made =
      MakeCredential(request.name, request.role, request.agent_names, clock.NowMillis());
  if (!made.ok()) return made.status();
  auto store = OpenExisting(request.db, /*read_only=*/false);
  if (!store.ok()) return store.status();
  absl::StatusOr<int64_t> id = (*store)->CreateCredential(made->record);
  if (!id.ok()) return id.status();
  const std::string token = FormatToken(*id, made->secret);
  if (!request.out.empty()) {
    if (absl::Status s = WriteFileAtomically(request.out, token + "\n", FileAccess::kOwnerOnly); !s.ok()) {
      // The credential exists but its only copy could not be written: revoke
      // it, so no unreachable token stays in force.
      (void)(*store)->RevokeCredential(request.name, clock.NowMillis());
      return absl::Status(s.code(), absl::StrCat(s.message(), " (credential '", request.name, "' revoked)"));
    }
  }
  return token;
}

absl::StatusOr<std::string> ListTokens(const std::string& db, bool json) {
  auto store = OpenExisting(db, /*read_only=*/true);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::vector<CredentialRecord>> credentials = (*store)->ListCredentials();
  if (!credentials.ok()) return credentials.status();
  std::string out;
  if (json) {
    for (const CredentialRecord& c : *credentials) {
      nlohmann::json line = {{"id", c.id},
                             {"name", c.name},
                             {"role", c.role},
                             {"agents", c.agent_names},
                             {"created_ms", c.created_ms},
                             {"last_used_ms", c.last_used_ms},
                             {"revoked_ms", c.revoked_ms}};
      absl::StrAppend(&out, line.dump(), "\n");
    }
    return out;
  }
  if (credentials->empty()) {
    return std::string("no tokens: this coordinator accepts only its shared token or, on loopback, anyone\n");
  }
  out = absl::StrFormat("%-4s %-24s %-7s %-20s %-19s  %-19s  %s\n", "ID", "NAME", "ROLE", "AGENTS", "CREATED (UTC)",
                        "LAST USED", "REVOKED");
  for (const CredentialRecord& c : *credentials) {
    absl::StrAppend(&out, absl::StrFormat("%-4d %-24s %-7s %-20s %-19s  %-19s  %s\n", c.id, ForTerminal(c.name), c.role,
                                          c.agent_names.empty() ? "-" : ForTerminal(c.agent_names), When(c.created_ms),
                                          When(c.last_used_ms), When(c.revoked_ms)));
  }
  return out;
}

absl::StatusOr<std::string> RevokeToken(const std::string& db, const std::string& id_or_name, const Clock& clock) {
  auto store = OpenExisting(db, /*read_only=*/false);
  if (!store.ok()) return store.status();
  const int64_t now = clock.NowMillis();
  absl::StatusOr<CredentialRecord> revoked = (*store)->RevokeCredential(id_or_name, now);
  if (!revoked.ok()) return revoked.status();
  if (revoked->revoked_ms != now && revoked->revoked_ms != std::max<int64_t>(now, 1)) {
    return absl::StrCat("token '", ForTerminal(revoked->name), "' was already revoked at ", When(revoked->revoked_ms),
                        " UTC\n");
  }
  return absl::StrCat("revoked token '", ForTerminal(revoked->name), "' (", revoked->role,
                      "); the coordinator refuses it from its next call\n");
}

}  // namespace stylesweep
