#include "coordinator/http/sessions.h"

#include <gtest/gtest.h>

namespace stylesweep {
namespace {

TEST(SessionTableTest, SessionsExpireHereWhateverTheBrowserKeeps) {
  SessionTable sessions(/*lifetime_ms=*/1000, /*capacity=*/10);
  absl::StatusOr<std::string> id = sessions.Create(Caller{"token:alice", 3, RoleSet{Role::kReader}, ""}, 5000);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->size(), 64u);
  ASSERT_TRUE(sessions.Find(*id, 5999).has_value());
  EXPECT_EQ(sessions.Find(*id, 5999)->credential, "token:alice");
  EXPECT_FALSE(sessions.Find(*id, 6000).has_value());
  EXPECT_FALSE(sessions.Find(*id, 5001).has_value());  // dropped once expired
  EXPECT_FALSE(sessions.Find("", 5000).has_value());
}

TEST(SessionTableTest, SignOutEndsTheSession) {
  SessionTable sessions(1000, 10);
  const std::string id = *sessions.Create(Caller{}, 0);
  sessions.Remove(id);
  EXPECT_FALSE(sessions.Find(id, 1).has_value());
}

TEST(SessionTableTest, MemoryIsBoundedByDroppingTheOldest) {
  SessionTable sessions(1000, 3);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(*sessions.Create(Caller{}, i));
  EXPECT_EQ(sessions.size(), 3u);
  EXPECT_FALSE(sessions.Find(ids[0], 10).has_value());
  EXPECT_FALSE(sessions.Find(ids[1], 10).has_value());
  EXPECT_TRUE(sessions.Find(ids[4], 10).has_value());
}

}  // namespace
}  // namespace stylesweep
