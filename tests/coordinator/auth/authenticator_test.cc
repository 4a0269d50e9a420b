#include "coordinator/auth/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/auth/credentials.h"
#include "tests/testing/fake_clock.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(":memory:");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Creates a credential in the store; returns its token.
  std::string Create(const std::string& name, const std::string& role, const std::string& agents = "") {
    absl::StatusOr<NewCredential> made = MakeCredential(name, role, agents, clock_.NowMillis());
    EXPECT_TRUE(made.ok()) << made.status();
    absl::StatusOr<int64_t> id = store_->CreateCredential(made->record);
    EXPECT_TRUE(id.ok()) << id.status();
    return FormatToken(*id, made->secret);
  }

  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuthenticatorTest, WithoutCredentialsAnOpenCoordinatorLetsAnyoneDoAnything) {
  Authenticator auth(*store_, clock_, AuthSettings{"", true});
  absl::StatusOr<Caller> caller = auth.Authenticate("", "");
  ASSERT_TRUE(caller.ok());
  EXPECT_TRUE(caller->roles.Has(Role::kUser));
  EXPECT_TRUE(caller->roles.Has(Role::kAgent));
  EXPECT_TRUE(Authenticator::AuthorizeAgent(*caller, "any").ok());
  // Not open (exposed): nobody without a credential.
  Authenticator closed(*store_, clock_, AuthSettings{"", false});
  EXPECT_TRUE(absl::IsUnauthenticated(closed.Authenticate("", "").status()));
}

TEST_F(AuthenticatorTest, TheFirstTokenClosesAnOpenCoordinatorForGood) {
  Authenticator auth(*store_, clock_, AuthSettings{"", true});
  ASSERT_TRUE(auth.Authenticate("", "").ok());
  const std::string token = Create("alice", "user");
  EXPECT_THAT(auth.Authenticate("", "").status().message(), HasSubstr("requires a token"));
  ASSERT_TRUE(auth.Authenticate(token, "").ok());
  // Revoking every token does not open it again.
  ASSERT_TRUE(store_->RevokeCredential("alice", clock_.NowMillis()).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate("", "").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate(token, "").status()));
}

TEST_F(AuthenticatorTest, ScopedTokensCarryTheirRoleAndAgents) {
  const std::string agent = Create("host-1", "agent", "gpu-1,gpu-2");
  const std::string reader = Create("grafana", "reader");
  Authenticator auth(*store_, clock_, AuthSettings{"", false});
  absl::StatusOr<Caller> a = auth.Authenticate(agent, "");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->credential, "token:host-1");
  EXPECT_TRUE(Authenticator::Authorize(*a, RoleSet{Role::kAgent}, "lease").ok());
  EXPECT_THAT(Authenticator::Authorize(*a, RoleSet{Role::kUser}, "call SubmitSweep").message(),
              HasSubstr("token:host-1 (role agent) may not call SubmitSweep: that needs role user"));
  EXPECT_TRUE(Authenticator::AuthorizeAgent(*a, "gpu-2").ok());
  EXPECT_THAT(Authenticator::AuthorizeAgent(*a, "gpu-3").message(), HasSubstr("may not act as agent 'gpu-3'"));
  absl::StatusOr<Caller> r = auth.Authenticate(reader, "");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Authenticator::Authorize(*r, RoleSet{Role::kUser, Role::kReader}, "read").ok());
  EXPECT_FALSE(Authenticator::Authorize(*r, RoleSet{Role::kUser}, "submit").ok());
  EXPECT_FALSE(Authenticator::AuthorizeAgent(*r, "gpu-1").ok());
}

TEST_F(AuthenticatorTest, WrongTokensAllGetTheSameAnswer) {
  const std::string token = Create("alice", "user");
  Authenticator auth(*store_, clock_, AuthSettings{"", false});
  std::string wrong_secret = token;
  wrong_secret.back() = wrong_secret.back() == '0' ? '1' : '0';
  std::string unknown_id = token;
  unknown_id.replace(4, 1, "9");
  for (const std::string& bad : {wrong_secret, unknown_id, std::string("nonsense"), std::string("ssw_1_short")}) {
    absl::Status s = auth.Authenticate(bad, "").status();
    EXPECT_TRUE(absl::IsUnauthenticated(s)) << bad;
    EXPECT_THAT(s.message(), HasSubstr("wrong token")) << bad;
  }
}

TEST_F(AuthenticatorTest, RevocationTakesEffectOnTheNextCall) {
  const std::string token = Create("alice", "user");
  Authenticator auth(*store_, clock_, AuthSettings{"", false});
  absl::StatusOr<Caller> caller = auth.Authenticate(token, "");
  ASSERT_TRUE(caller.ok());
  ASSERT_TRUE(auth.Revalidate(*caller).ok());
  ASSERT_TRUE(store_->RevokeCredential("alice", clock_.NowMillis()).ok());
  EXPECT_THAT(auth.Authenticate(token, "").status().message(), HasSubstr("token 'alice' was revoked"));
  EXPECT_TRUE(absl::IsPermissionDenied(auth.Revalidate(*caller)));
}

TEST_F(AuthenticatorTest, TheSharedTokenDoesEverything) {
  Authenticator auth(*store_, clock_, AuthSettings{"shared-secret", true});
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate("", "").status()));
  EXPECT_TRUE(absl::IsUnauthenticated(auth.Authenticate("shared-secreT", "").status()));
  absl::StatusOr<Caller> caller = auth.Authenticate("shared-secret", "");
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->credential, "shared token");
  EXPECT_TRUE(Authenticator::Authorize(*caller, RoleSet{Role::kUser}, "submit").ok());
  EXPECT_TRUE(Authenticator::AuthorizeAgent(*caller, "gpu-9").ok());
}

TEST_F(AuthenticatorTest, AClientCertificateNamesOneAgent) {
  Authenticator auth(*store_, clock_, AuthSettings{"", false});
  absl::StatusOr<Caller> caller = auth.Authenticate("", "gpu-7");
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->credential, "certificate:gpu-7");
  EXPECT_TRUE(Authenticator::Authorize(*caller, RoleSet{Role::kAgent}, "lease").ok());
  EXPECT_FALSE(Authenticator::Authorize(*caller, RoleSet{Role::kUser, Role::kReader}, "read").ok());
  EXPECT_TRUE(Authenticator::AuthorizeAgent(*caller, "gpu-7").ok());
  EXPECT_FALSE(Authenticator::AuthorizeAgent(*caller, "gpu-8").ok());
  EXPECT_FALSE(Authenticator::AuthorizeAgent(*caller, "gpu-").ok());
  // With an agent token too, the certificate narrows it to its one name.
  const std::string token = Create("host-1", "agent", "gpu-*");
  absl::StatusOr<Caller> both = auth.Authenticate(token, "gpu-7");
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(Authenticator::AuthorizeAgent(*both, "gpu-7").ok());
  EXPECT_FALSE(Authenticator::AuthorizeAgent(*both, "gpu-8").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(auth.Authenticate(token, "cpu-1").status()));
}

TEST_F(AuthenticatorTest, LastUseIsWrittenAtMostOnceAMinute) {
  const std::string token = Create("alice", "user");
  Authenticator auth(*store_, clock_, AuthSettings{"", false});
  ASSERT_TRUE(auth.Authenticate(token, "").ok());
  const int64_t first = store_->ListCredentials()->front().last_used_ms;
  EXPECT_EQ(first, clock_.NowMillis());
  clock_.Advance(30'000);
  ASSERT_TRUE(auth.Authenticate(token, "").ok());
  EXPECT_EQ(store_->ListCredentials()->front().last_used_ms, first);
  clock_.Advance(31'000);
  ASSERT_TRUE(auth.Authenticate(token, "").ok());
  EXPECT_EQ(store_->ListCredentials()->front().last_used_ms, clock_.NowMillis());
}

}  // namespace
}  // namespace stylesweep
