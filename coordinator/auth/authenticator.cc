#include "coordinator/auth/authenticator.h"

#include "absl/strings/str_cat.h"
#include "coordinator/auth/credentials.h"

namespace stylesweep {
namespace {

// How often, at most, a credential's last use is written: often enough for
// `stylesweep tokens list` to show which are idle, rarely enough that
// heartbeats do not each cost a write.
constexpr int64_t kNoteUseEveryMs = 60 * 1000;

constexpr char kNeedsToken[] =
    "this coordinator requires a token: pass --token-file FILE or set STYLESWEEP_TOKEN (an administrator makes "
    "one with `stylesweep tokens create`)";

}  // namespace

Authenticator::Authenticator(Store& store, const Clock& clock, AuthSettings settings)
    : store_(store), clock_(clock), settings_(std::move(settings)) {}

absl::StatusOr<bool> Authenticator::Required() {
  if (!settings_.shared_token.empty() || !settings_.open_without_credentials) return true;
  if (has_scoped_.load(std::memory_order_acquire)) return true;
  absl::StatusOr<bool> has = store_.HasCredentials();
  if (!has.ok()) return has.status();
  if (*has) has_scoped_.store(true, std::memory_order_release);
  return *has;
}

absl::StatusOr<Caller> Authenticator::Authenticate(absl::string_view bearer, absl::string_view certificate_name) {
  absl::StatusOr<bool> required = Required();
  if (!required.ok()) return required.status();
  if (!*required) return Caller{"", 0, RoleSet::All(), "*"};
  Caller caller;
  if (!bearer.empty()) {
    if (!settings_.shared_token.empty() && ConstantTimeEquals(bearer, settings_.shared_token)) {
      caller = Caller{"shared token", 0, RoleSet::All(), "*"};
    } else {
      absl::StatusOr<Caller> scoped = FromToken(bearer);
      if (!scoped.ok()) return scoped.status();
      caller = *std::move(scoped);
    }
    if (!certificate_name.empty() && caller.roles.Has(Role::kAgent)) {
      // Both: the certificate narrows the token to the agent it names.
      if (!AgentNameAllowed(caller.agent_names, certificate_name) && caller.agent_names != "*") {
        return absl::PermissionDeniedError(absl::StrCat("the client certificate names agent '", certificate_name,
                                                        "', which ", caller.credential, " may not act as"));
      }
      caller.agent_names = std::string(certificate_name);
    }
    return caller;
  }
  if (!certificate_name.empty()) {
    return Caller{absl::StrCat("certificate:", certificate_name), 0, RoleSet{Role::kAgent},
                  std::string(certificate_name)};
  }
  return absl::UnauthenticatedError(kNeedsToken);
}

absl::StatusOr<Caller> Authenticator::FromToken(absl::string_view bearer) {
  absl::StatusOr<ParsedToken> parsed = ParseToken(bearer);
  // One answer for a malformed token, an unknown id and a wrong secret: a
  // guesser learns nothing about which ids exist.
  const absl::Status wrong = absl::UnauthenticatedError("wrong token (`stylesweep tokens list` shows those in force)");
  if (!parsed.ok()) return wrong;
  absl::StatusOr<CredentialRecord> record = store_.GetCredential(parsed->id);
  if (!record.ok()) return absl::IsNotFound(record.status()) ? wrong : record.status();
  if (!SecretMatches(*record, parsed->secret)) return wrong;
  if (record->revoked_ms != 0) {
    return absl::UnauthenticatedError(absl::StrCat("token '", record->name, "' was revoked"));
  }
  const std::optional<Role> role = ParseRole(record->role);
  if (!role.has_value()) return absl::InternalError(absl::StrCat("credential '", record->name, "' has no known role"));
  NoteUse(record->id);
  return Caller{absl::StrCat("token:", record->name), record->id, RoleSet{*role},
                *role == Role::kAgent ? record->agent_names : ""};
}

void Authenticator::NoteUse(int64_t credential_id) {
  const int64_t now = clock_.NowMillis();
  {
    absl::MutexLock lock(&mu_);
    int64_t& noted = noted_ms_[credential_id];
    if (now - noted < kNoteUseEveryMs) return;
    noted = now;
  }
  // Best effort: a busy database must not fail the call that used it.
  (void)store_.NoteCredentialUse(credential_id, now);
}

absl::Status Authenticator::Revalidate(const Caller& caller) {
  if (caller.credential_id == 0) return absl::OkStatus();
  absl::StatusOr<CredentialRecord> record = store_.GetCredential(caller.credential_id);
  if (!record.ok()) return record.status();
  if (record->revoked_ms != 0) {
    return absl::PermissionDeniedError(absl::StrCat("token '", record->name, "' was revoked"));
  }
  return absl::OkStatus();
}

absl::Status Authenticator::Authorize(const Caller& caller, RoleSet roles, absl::string_view what) {
  if (roles.empty() || caller.roles.Intersects(roles)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(caller.credential, " (role ", caller.roles.Describe(),
                                                  ") may not ", what, ": that needs role ", roles.Describe()));
}

absl::Status Authenticator::AuthorizeAgent(const Caller& caller, absl::string_view name) {
  if (caller.agent_names == "*" || AgentNameAllowed(caller.agent_names, name)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(caller.credential.empty() ? "this caller" : caller.credential,
                                                  " may not act as agent '", name.substr(0, 64), "' (it may act as ",
                                                  caller.agent_names.empty() ? "no agent" : caller.agent_names, ")"));
}

}  // namespace stylesweep
