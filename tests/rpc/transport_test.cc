// The exposure rule shared by the gRPC and HTTP ports: what counts as
// loopback, and what a server beyond it needs; and what a client is told
// when it cannot reach a coordinator.

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

// Beyond loopback TLS is needed, with any one kind of credential: scoped
// tokens in the database, a shared token, or a client CA.
TEST(CheckExposureTest, ExposedNeedsTlsAndSomeCredential) {
  ServerSecurity tls_only;
  tls_only.tls_cert_file = "server.crt";
  tls_only.tls_key_file = "server.key";
  EXPECT_FALSE(HasCredentials(tls_only));
  EXPECT_EQ(CheckExposure("0.0.0.0:50051", tls_only, "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(CheckExposure("0.0.0.0:50051", tls_only, "x").message()),
              HasSubstr("stylesweep tokens create"));
  ServerSecurity scoped = tls_only;
  scoped.scoped_tokens = true;
  EXPECT_TRUE(CheckExposure("0.0.0.0:50051", scoped, "x").ok());
  ServerSecurity mutual = tls_only;
  mutual.tls_client_ca_file = "ca.pem";
  EXPECT_TRUE(CheckExposure("0.0.0.0:50051", mutual, "x").ok());
  ServerSecurity plaintext_tokens;
  plaintext_tokens.scoped_tokens = true;  // tokens in the clear are no protection
  EXPECT_EQ(CheckExposure("0.0.0.0:50051", plaintext_tokens, "x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MakeServerCredentialsTest, AClientCaNeedsTls) {
  ServerSecurity security;
  security.tls_client_ca_file = "ca.pem";
  auto credentials = MakeServerCredentials("127.0.0.1:0", security);
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr("--tls-client-ca needs --tls-cert"));
}

// The texts below are gRPC's own, as a client sees them (see
// tests/integration/cli_errors_test.cc for the real thing).
grpc::Status Unavailable(const std::string& last_error) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "failed to connect to all addresses; last error: " + last_error);
}

TEST(UnreachableErrorTest, APlaintextClientClosedOnByATlsServerIsToldToAddTls) {
  const absl::Status s = UnreachableError(Unavailable("UNAVAILABLE: ipv4:127.0.0.1:50051: Socket closed"),
                                          "127.0.0.1:50051", ClientSecurity{});
  EXPECT_TRUE(absl::IsUnavailable(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot reach the coordinator at 127.0.0.1:50051 (failed to"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("the coordinator may require TLS, so add --tls (and --tls-ca"));
}

TEST(UnreachableErrorTest, ATlsClientAnsweredInPlaintextIsToldToDropTls) {
  ClientSecurity security;
  security.tls = true;
  security.tls_ca_file = "ca.pem";
  const absl::Status s = UnreachableError(
      Unavailable("UNKNOWN: ipv4:127.0.0.1:50051: Ssl handshake failed: SSL_ERROR_SSL: error:0A00010B:SSL "
                  "routines::wrong version number"),
      "127.0.0.1:50051", security);
  EXPECT_THAT(std::string(s.message()), HasSubstr("it does not answer in TLS: it may serve plaintext, so drop --tls "
                                                  "and --tls-ca"));
}

TEST(UnreachableErrorTest, AnUntrustedCertificateAsksForTheRightCa) {
  ClientSecurity security;
  security.tls = true;
  const grpc::Status status = Unavailable(
      "UNKNOWN: ipv4:127.0.0.1:50051: Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL "
      "routines::certificate verify failed");
  EXPECT_THAT(std::string(UnreachableError(status, "127.0.0.1:50051", security).message()),
              HasSubstr("pass --tls-ca with the certificate of the one that signed it"));
  security.tls_ca_file = "other-ca.pem";
  EXPECT_THAT(std::string(UnreachableError(status, "127.0.0.1:50051", security).message()),
              HasSubstr("not signed by the authority in --tls-ca other-ca.pem"));
}

TEST(UnreachableErrorTest, NothingListeningAsksWhetherItRuns) {
  for (bool tls : {false, true}) {
    ClientSecurity security;
    security.tls = tls;
    const absl::Status s = UnreachableError(
        Unavailable("UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote host: Connection refused"), "127.0.0.1:1",
        security);
    EXPECT_THAT(std::string(s.message()), HasSubstr("nothing listens there: is stylesweep-coordinator running"));
    EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("TLS")));
  }
}

}  // namespace
}  // namespace stylesweep
