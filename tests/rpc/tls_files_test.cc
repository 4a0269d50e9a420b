// A server's certificate and key, checked before a server is built: each
// way they can be wrong is named with the file. Test certificates come from
// the openssl program; without it these tests skip.

#include "rpc/tls_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stylesweep_tls_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    openssl_ = testing::FindProgram("openssl");
    if (openssl_.empty()) GTEST_SKIP() << "openssl is not installed: cannot make a test certificate";
    for (const char* name : {"a", "b"}) {
      std::string output;
      if (testing::RunCommand({openssl_, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                               "-days", "1", "-keyout", Path(name, "key"), "-out", Path(name, "crt")},
                              &output) != 0) {
        GTEST_SKIP() << "openssl cannot make a test certificate here: " << output;
      }
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name, const std::string& extension) const {
    return (dir_ / (name + "." + extension)).string();
  }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
  std::string openssl_;
};

TEST_F(TlsFilesTest, ACertificateAndItsKeyLoad) {
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(Path("a", "crt"), Path("a", "key"));
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_THAT(pair->cert_pem, HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_THAT(pair->key_pem, HasSubstr("PRIVATE KEY"));
}

TEST_F(TlsFilesTest, AnotherCertificatesKeyIsNamedAsNotMatching) {
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(Path("a", "crt"), Path("b", "key"));
  ASSERT_FALSE(pair.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(pair.status()));
  EXPECT_THAT(std::string(pair.status().message()),
              HasSubstr("tls_key " + Path("b", "key") + " does not match tls_cert " + Path("a", "crt")));
}

TEST_F(TlsFilesTest, MissingFilesAreNamed) {
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(Path("a", "crt"), Path("missing", "key"));
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("tls_key: cannot read"));
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr(Path("missing", "key")));
  pair = LoadTlsKeyPair("", Path("a", "key"));
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("needs both tls_cert"));
}

TEST_F(TlsFilesTest, FilesThatAreNotPemAreNamed) {
  const std::string text = Write("notes.txt", "not a certificate\n");
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(text, Path("a", "key"));
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("tls_cert " + text + " holds no PEM certificate"));
  pair = LoadTlsKeyPair(Path("a", "crt"), text);
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("tls_key " + text + " holds no PEM private key"));
}

TEST_F(TlsFilesTest, SwappedFilesAreNoticed) {
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(Path("a", "key"), Path("a", "crt"));
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("it holds a private key: is it tls_key?"));
}

TEST_F(TlsFilesTest, AnEncryptedKeyIsRefusedWithoutAskingForAPassphrase) {
  const std::string encrypted = Path("encrypted", "key");
  std::string output;
  ASSERT_EQ(testing::RunCommand({openssl_, "pkey", "-in", Path("a", "key"), "-aes256", "-passout", "pass:secret",
                                 "-out", encrypted},
                                &output),
            0)
      << output;
  absl::StatusOr<TlsKeyPair> pair = LoadTlsKeyPair(Path("a", "crt"), encrypted);
  ASSERT_FALSE(pair.ok());
  EXPECT_THAT(std::string(pair.status().message()), HasSubstr("tls_key " + encrypted + " is encrypted"));
}

}  // namespace
}  // namespace stylesweep
