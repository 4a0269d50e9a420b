#ifndef STYLESWEEP_COORDINATOR_AUTH_ROLES_H_
#define STYLESWEEP_COORDINATOR_AUTH_ROLES_H_

// Who may call what: the one table, for the gRPC methods and the HTTP paths
// alike. Three roles, each holding only what its job needs:
//   agent   register, lease, fetch inputs, heartbeat, report, upload,
//           complete and hand back runs, under the agent names it was given
//   user    submit, control and delete sweeps, release agents, and read
//   reader  read only (dashboards, reports, Prometheus)
// Health checks, server reflection (which describes only the public
// protocol) and the dashboard's sign-in page need no credential.

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

namespace stylesweep {

enum class Role : uint8_t { kAgent = 1, kUser = 2, kReader = 4 };

// A set of roles, as a bit mask of Role values.
class RoleSet {
 public:
  constexpr RoleSet() = default;
  constexpr RoleSet(std::initializer_list<Role> roles) {
    for (Role r : roles) bits_ |= static_cast<uint8_t>(r);
  }
  static constexpr RoleSet All() { return RoleSet{Role::kAgent, Role::kUser, Role::kReader}; }
  constexpr bool Has(Role role) const { return (bits_ & static_cast<uint8_t>(role)) != 0; }
  constexpr bool Intersects(RoleSet other) const { return (bits_ & other.bits_) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  // "agent", "user or reader", "agent, user or reader".
  std::string Describe() const;

 private:
  uint8_t bits_ = 0;
};

absl::string_view RoleName(Role role);
// "agent", "user" or "reader"; nullopt otherwise.
std::optional<Role> ParseRole(absl::string_view name);

// The roles that may call a gRPC method, by its full path
// ("/stylesweep.v1.Coordinator/SubmitSweep"). Empty for a public method
// (health, reflection). nullopt for a path the table does not know: no role
// may call it.
std::optional<RoleSet> RolesForRpc(absl::string_view path);

// The roles that may request an HTTP path (without its query). Empty for a
// public path (/healthz, /readyz, /login). Every other path, known or not,
// needs user or reader: an unknown one then answers 404 only to them.
RoleSet RolesForHttp(absl::string_view path);

// One row of the table, for documentation and tests.
struct Permission {
  absl::string_view surface;  // "grpc" or "http"
  absl::string_view name;     // method path, or HTTP path (a trailing '*' matches a prefix)
  RoleSet roles;             // empty: public
};
const std::vector<Permission>& PermissionTable();

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_AUTH_ROLES_H_
