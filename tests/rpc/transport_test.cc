// The exposure rule shared by the gRPC and HTTP ports: what counts as
// loopback, and what a server beyond it needs.

#include "rpc/transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

TEST(IsLoopbackAddressTest, LoopbackLiteralsAndLocalhost) {
  for (const char* listen : {"127.0.0.1:50051", "127.1.2.3:0", "127.255.255.255:8080", "[::1]:50051",
                             "[::ffff:127.0.0.1]:80", "localhost:8080"}) {
    EXPECT_TRUE(IsLoopbackAddress(listen)) << listen;
  }
}

// Names that only look like loopback resolve wherever their owner wants.
TEST(IsLoopbackAddressTest, NamesThatLookLikeLoopbackAreNot) {
  for (const char* listen : {"127.evil.example:8080", "127.0.0.1.nip.io:8080", "127.0.0.1.evil.example:0",
                             "localhost.evil.example:80", "127:80", "127.1:80", "0x7f.0.0.1:80",
                             "0177.0.0.1:80", "[::1.evil.example]:80"}) {
    EXPECT_FALSE(IsLoopbackAddress(listen)) << listen;
  }
}

TEST(IsLoopbackAddressTest, OtherAddressesAreNot) {
  for (const char* listen : {"0.0.0.0:50051", "[::]:50051", "10.0.0.1:80", "128.0.0.1:80", "[::2]:80",
                             "[::ffff:10.0.0.1]:80", "example.org:443", ":8080"}) {
    EXPECT_FALSE(IsLoopbackAddress(listen)) << listen;
  }
}

TEST(CheckExposureTest, CraftedNameNeedsTlsAndAToken) {
  ServerSecurity security;
  const absl::Status status = CheckExposure("127.0.0.1.nip.io:8080", security, "read results");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("refusing to listen on 127.0.0.1.nip.io:8080"));
  EXPECT_TRUE(CheckExposure("127.0.0.1:8080", security, "read results").ok());
  security.tls_cert_file = "server.crt";
  security.tls_key_file = "server.key";
  security.token = "t";
  EXPECT_TRUE(CheckExposure("127.0.0.1.nip.io:8080", security, "read results").ok());
}

}  // namespace
}  // namespace stylesweep
