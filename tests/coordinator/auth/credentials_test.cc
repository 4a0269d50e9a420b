#include "coordinator/auth/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

TEST(CredentialsTest, MakesASaltedHashAndNeverKeepsTheSecret) {
  absl::StatusOr<NewCredential> a = MakeCredential("host-1", "agent", "gpu-1, gpu-2", 5);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->secret.size(), 64u);
  EXPECT_EQ(a->record.agent_names, "gpu-1,gpu-2");
  EXPECT_EQ(a->record.role, "agent");
  EXPECT_EQ(a->record.created_ms, 5);
  EXPECT_EQ(a->record.secret_hash.find(a->secret), std::string::npos);
  EXPECT_EQ(a->record.salt.size(), 32u);
  EXPECT_TRUE(SecretMatches(a->record, a->secret));
  std::string wrong = a->secret;
  wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(SecretMatches(a->record, wrong));
  EXPECT_FALSE(SecretMatches(a->record, ""));
  // Two credentials never share a secret, a salt or a hash.
  absl::StatusOr<NewCredential> b = MakeCredential("host-2", "agent", "gpu-1", 5);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->secret, b->secret);
  EXPECT_NE(a->record.salt, b->record.salt);
  EXPECT_NE(a->record.secret_hash, b->record.secret_hash);
}

TEST(CredentialsTest, RefusesBadNamesRolesAndAgentLists) {
  EXPECT_THAT(MakeCredential("", "user", "", 0).status().message(), HasSubstr("credential name"));
  EXPECT_THAT(MakeCredential("-x", "user", "", 0).status().message(), HasSubstr("credential name"));
  EXPECT_THAT(MakeCredential("a b", "user", "", 0).status().message(), HasSubstr("credential name"));
  EXPECT_THAT(MakeCredential(std::string(65, 'a'), "user", "", 0).status().message(), HasSubstr("credential name"));
  EXPECT_THAT(MakeCredential("\x1b[31mred", "user", "", 0).status().message(), HasSubstr("credential name"));
  EXPECT_THAT(MakeCredential("alice", "admin", "", 0).status().message(), HasSubstr("expected agent, user or reader"));
  EXPECT_THAT(MakeCredential("host", "agent", "", 0).status().message(), HasSubstr("names the agents"));
  EXPECT_THAT(MakeCredential("alice", "user", "gpu-1", 0).status().message(), HasSubstr("only agent credentials"));
  EXPECT_THAT(MakeCredential("host", "agent", "gpu 1", 0).status().message(), HasSubstr("agent name 'gpu 1'"));
  EXPECT_THAT(MakeCredential("host", "agent", "gpu-*-x*", 0).status().message(), HasSubstr("agent name"));
  EXPECT_TRUE(MakeCredential("host", "agent", "*", 0).ok());
  EXPECT_TRUE(MakeCredential("host", "agent", "gpu-*", 0).ok());
}

TEST(CredentialsTest, TokensRoundTripAndOthersAreNotTokens) {
  const std::string secret(64, 'f');
  absl::StatusOr<ParsedToken> parsed = ParseToken(FormatToken(42, secret));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->id, 42);
  EXPECT_EQ(parsed->secret, secret);
  for (const std::string& bad : {std::string(""), std::string("ssw_"), std::string("ssw_42"),
                                 "ssw_x_" + secret, "ssw_-1_" + secret, "ssw_0_" + secret, "ssw_42_" + secret + "0",
                                 "ssx_42_" + secret, "ssw_99999999999999999999_" + secret}) {
    EXPECT_FALSE(ParseToken(bad).ok()) << bad;
  }
}

TEST(CredentialsTest, AgentNamesMatchExactlyOrByPrefix) {
  EXPECT_TRUE(AgentNameAllowed("gpu-1,gpu-2", "gpu-2"));
  EXPECT_FALSE(AgentNameAllowed("gpu-1,gpu-2", "gpu-3"));
  EXPECT_FALSE(AgentNameAllowed("gpu-1", "gpu-10"));
  EXPECT_TRUE(AgentNameAllowed("host-a-*", "host-a-cuda:0"));
  EXPECT_FALSE(AgentNameAllowed("host-a-*", "host-b-cuda:0"));
  EXPECT_TRUE(AgentNameAllowed("*", "anything"));
  EXPECT_FALSE(AgentNameAllowed("", "gpu-1"));
  EXPECT_FALSE(AgentNameAllowed("gpu-1", ""));
}

}  // namespace
}  // namespace stylesweep
