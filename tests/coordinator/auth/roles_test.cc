#include "coordinator/auth/roles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>

#include "absl/strings/str_cat.h"

#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {
namespace {

// Every method of the service is in the table, so a new RPC cannot ship
// without someone deciding who may call it.
TEST(RolesTest, EveryCoordinatorMethodHasRoles) {
  const google::protobuf::ServiceDescriptor* service =
      v1::SubmitSweepRequest::descriptor()->file()->FindServiceByName("Coordinator");
  ASSERT_NE(service, nullptr);
  ASSERT_GT(service->method_count(), 10);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string path = "/stylesweep.v1.Coordinator/" + service->method(i)->name();
    const std::optional<RoleSet> roles = RolesForRpc(path);
    ASSERT_TRUE(roles.has_value()) << path;
    EXPECT_FALSE(roles->empty()) << path << " must not be public";
  }
}

TEST(RolesTest, EachRoleGetsOnlyItsJob) {
  auto allowed = [](absl::string_view method, Role role) {
    return RolesForRpc(absl::StrCat("/stylesweep.v1.Coordinator/", method))->Has(role);
  };
  for (const char* method : {"SubmitSweep", "ControlSweep", "DeleteSweep", "ReleaseAgent"}) {
    EXPECT_TRUE(allowed(method, Role::kUser)) << method;
    EXPECT_FALSE(allowed(method, Role::kReader)) << method;
    EXPECT_FALSE(allowed(method, Role::kAgent)) << method;
  }
  for (const char* method : {"GetSweep", "GetRun", "FetchArtifact", "ListAgents"}) {
    EXPECT_TRUE(allowed(method, Role::kUser)) << method;
    EXPECT_TRUE(allowed(method, Role::kReader)) << method;
    EXPECT_FALSE(allowed(method, Role::kAgent)) << method;
  }
  for (const char* method : {"RegisterAgent", "LeaseRun", "FetchBlob", "Heartbeat", "ReportMetrics", "UploadSnapshot",
                             "CompleteRun", "ReleaseRun"}) {
    EXPECT_TRUE(allowed(method, Role::kAgent)) << method;
    EXPECT_FALSE(allowed(method, Role::kUser)) << method;
    EXPECT_FALSE(allowed(method, Role::kReader)) << method;
  }
}

TEST(RolesTest, UnknownMethodsAreNobodysAndProbesArePublic) {
  EXPECT_FALSE(RolesForRpc("/stylesweep.v1.Coordinator/Nope").has_value());
  EXPECT_FALSE(RolesForRpc("/other.Service/SubmitSweep").has_value());
  EXPECT_FALSE(RolesForRpc("").has_value());
  EXPECT_TRUE(RolesForRpc("/grpc.health.v1.Health/Check")->empty());
  EXPECT_TRUE(RolesForRpc("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")->empty());
}

TEST(RolesTest, HttpPathsNeedReadersExceptProbesAndSignIn) {
  for (const char* path : {"/healthz", "/readyz", "/login", "/logout"}) EXPECT_TRUE(RolesForHttp(path).empty()) << path;
  for (const char* path : {"/", "/api/state", "/api/snapshot/12", "/metrics", "/unknown", "/healthz/x", "/loginx"}) {
    const RoleSet roles = RolesForHttp(path);
    EXPECT_TRUE(roles.Has(Role::kReader)) << path;
    EXPECT_TRUE(roles.Has(Role::kUser)) << path;
    EXPECT_FALSE(roles.Has(Role::kAgent)) << path;
  }
}

TEST(RolesTest, DescribesRoleSets) {
  EXPECT_EQ(RoleSet({Role::kUser, Role::kReader}).Describe(), "user or reader");
  EXPECT_EQ(RoleSet::All().Describe(), "agent, user or reader");
  EXPECT_EQ(RoleSet().Describe(), "none");
  EXPECT_EQ(ParseRole("agent"), Role::kAgent);
  EXPECT_FALSE(ParseRole("admin").has_value());
  EXPECT_FALSE(ParseRole("Agent").has_value());
}

}  // namespace
}  // namespace stylesweep
