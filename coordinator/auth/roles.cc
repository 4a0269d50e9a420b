#include "coordinator/auth/roles.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stylesweep {
namespace {

constexpr RoleSet kAgentOnly{Role::kAgent};
constexpr RoleSet kUserOnly{Role::kUser};
constexpr RoleSet kReaders{Role::kUser, Role::kReader};
constexpr RoleSet kPublic{};

}  // namespace

std::string RoleSet::Describe() const {
  std::vector<absl::string_view> names;
  for (Role role : {Role::kAgent, Role::kUser, Role::kReader}) {
    if (Has(role)) names.push_back(RoleName(role));
  }
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) absl::StrAppend(&text, i + 1 == names.size() ? " or " : ", ");
    absl::StrAppend(&text, names[i]);
  }
  return text.empty() ? "none" : text;
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAgent:
      return "agent";
    case Role::kUser:
      return "user";
    case Role::kReader:
      return "reader";
  }
  return "?";
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role role : {Role::kAgent, Role::kUser, Role::kReader}) {
    if (name == RoleName(role)) return role;
  }
  return std::nullopt;
}

const std::vector<Permission>& PermissionTable() {
  static const auto* table = new std::vector<Permission>{
      // Users run sweeps and agents' quarantine.
      {"grpc", "/stylesweep.v1.Coordinator/SubmitSweep", kUserOnly},
      {"grpc", "/stylesweep.v1.Coordinator/ControlSweep", kUserOnly},
      {"grpc", "/stylesweep.v1.Coordinator/DeleteSweep", kUserOnly},
      {"grpc", "/stylesweep.v1.Coordinator/ReleaseAgent", kUserOnly},
      // Reading.
      {"grpc", "/stylesweep.v1.Coordinator/GetSweep", kReaders},
      {"grpc", "/stylesweep.v1.Coordinator/GetRun", kReaders},
      {"grpc", "/stylesweep.v1.Coordinator/FetchArtifact", kReaders},
      {"grpc", "/stylesweep.v1.Coordinator/ListAgents", kReaders},
      // Agents' work.
      {"grpc", "/stylesweep.v1.Coordinator/RegisterAgent", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/LeaseRun", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/FetchBlob", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/Heartbeat", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/ReportMetrics", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/UploadSnapshot", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/CompleteRun", kAgentOnly},
      {"grpc", "/stylesweep.v1.Coordinator/ReleaseRun", kAgentOnly},
      // Probes and the protocol's description.
      {"grpc", "/grpc.health.v1.Health/*", kPublic},
      {"grpc", "/grpc.reflection.v1alpha.ServerReflection/*", kPublic},
      {"grpc", "/grpc.reflection.v1.ServerReflection/*", kPublic},
      {"http", "/healthz", kPublic},
      {"http", "/readyz", kPublic},
      {"http", "/login", kPublic},
      {"http", "/logout", kPublic},
      {"http", "/", kReaders},
      {"http", "/api/state", kReaders},
      {"http", "/api/snapshot/*", kReaders},
      {"http", "/metrics", kReaders},
  };
  return *table;
}

namespace {

bool Matches(absl::string_view pattern, absl::string_view name) {
  if (absl::EndsWith(pattern, "*")) return absl::StartsWith(name, pattern.substr(0, pattern.size() - 1));
  return pattern == name;
}

}  // namespace

std::optional<RoleSet> RolesForRpc(absl::string_view path) {
  for (const Permission& p : PermissionTable()) {
    if (p.surface == "grpc" && Matches(p.name, path)) return p.roles;
  }
  return std::nullopt;
}

RoleSet RolesForHttp(absl::string_view path) {
  for (const Permission& p : PermissionTable()) {
    if (p.surface == "http" && Matches(p.name, path)) return p.roles;
  }
  return kReaders;
}

}  // namespace stylesweep
