// What the real binaries say when what they were given is wrong: a client
// and a coordinator that disagree about TLS, a coordinator given another
// certificate's key, a grid too large to run, file names that are not
// UTF-8, and sweep files nested too deeply. Each message must say what is
// wrong with what the user gave, and never only "is it running?", "the
// address is taken" or a bare "error: ".

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/files.h"
#include "tests/testing/subprocess.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::Subprocess;
using testing::WaitUntil;

namespace fs = std::filesystem;

class CliErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stylesweep_cli_errors_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    bin_ = STYLESWEEP_BIN_DIR;
    images_ = fs::path(STYLESWEEP_SOURCE_DIR) / "configs" / "images";
  }
  void TearDown() override {
    coordinators_.clear();
    fs::remove_all(dir_);
  }

  // A self-signed certificate for 127.0.0.1 and its key, as dir_/NAME.crt
  // and dir_/NAME.key; false (the test skips) without the openssl program.
  bool MakeCertificate(const std::string& name) {
    const std::string openssl = testing::FindProgram("openssl");
    if (openssl.empty()) return false;
    std::string output;
    return RunCommand({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
                       "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", Path(name + ".key"), "-out",
                       Path(name + ".crt")},
                      &output) == 0;
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // Starts a coordinator on a free loopback port with `extra` flags and
  // returns its address.
  std::string StartCoordinator(const std::string& name, const std::vector<std::string>& extra) {
    const std::string address_file = Path(name + ".address");
    std::vector<std::string> argv = {bin_ + "/stylesweep-coordinator", "--listen",      "127.0.0.1:0",
                                     "--db",                           Path(name + ".db"), "--artifacts",
                                     Path(name + "-artifacts"),        "--address-file", address_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinators_.push_back(std::make_unique<Subprocess>(argv, Path(name + ".log")));
    EXPECT_TRUE(WaitUntil([&] { return fs::exists(address_file) && fs::file_size(address_file) > 0; }, 20000))
        << coordinators_.back()->Log();
    auto address = ReadFileToString(address_file);
    std::string a = address.ok() ? *address : "";
    while (!a.empty() && a.back() == '\n') a.pop_back();
    return a;
  }

  // Runs the CLI; returns its exit status and puts what it printed in *output.
  int Cli(std::vector<std::string> args, std::string* output) {
    args.insert(args.begin(), bin_ + "/stylesweep");
    return RunCommand(args, output);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = Path(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  fs::path dir_;
  std::string bin_;
  fs::path images_;
  std::vector<std::unique_ptr<Subprocess>> coordinators_;
};

TEST_F(CliErrorsTest, APlaintextClientIsToldTheCoordinatorMayRequireTls) {
  if (!MakeCertificate("server")) GTEST_SKIP() << "openssl cannot make a test certificate here";
  const std::string address =
      StartCoordinator("tls", {"--tls-cert", Path("server.crt"), "--tls-key", Path("server.key")});
  for (const char* command : {"status", "agents"}) {
    std::string output;
    EXPECT_NE(Cli({command, "--coordinator", address}, &output), 0);
    EXPECT_THAT(output, HasSubstr("cannot reach the coordinator at " + address)) << command;
    EXPECT_THAT(output, HasSubstr("the coordinator may require TLS, so add --tls (and --tls-ca")) << command;
    EXPECT_THAT(output, Not(HasSubstr("is stylesweep-coordinator running"))) << command;
  }
  // And with --tls-ca it works.
  std::string output;
  EXPECT_EQ(Cli({"status", "--coordinator", address, "--tls-ca", Path("server.crt")}, &output), 0) << output;
}

TEST_F(CliErrorsTest, ATlsClientIsToldTheCoordinatorServesPlaintext) {
  if (!MakeCertificate("server")) GTEST_SKIP() << "openssl cannot make a test certificate here";
  const std::string address = StartCoordinator("plain", {});
  std::string output;
  EXPECT_NE(Cli({"status", "--coordinator", address, "--tls-ca", Path("server.crt")}, &output), 0);
  EXPECT_THAT(output, HasSubstr("it does not answer in TLS: it may serve plaintext, so drop --tls and --tls-ca"));
  // gRPC's own log line about the handshake no longer comes first.
  EXPECT_THAT(output, Not(HasSubstr("Handshake failed with fatal error")));
}

TEST_F(CliErrorsTest, AClientThatDoesNotTrustTheCertificateIsToldWhichCaToPass) {
  if (!MakeCertificate("server") || !MakeCertificate("other")) {
    GTEST_SKIP() << "openssl cannot make a test certificate here";
  }
  const std::string address =
      StartCoordinator("tls", {"--tls-cert", Path("server.crt"), "--tls-key", Path("server.key")});
  std::string output;
  EXPECT_NE(Cli({"status", "--coordinator", address, "--tls-ca", Path("other.crt")}, &output), 0);
  EXPECT_THAT(output, HasSubstr("its certificate is not signed by the authority in --tls-ca " + Path("other.crt")));
}

TEST_F(CliErrorsTest, NothingListeningAsksWhetherTheCoordinatorRuns) {
  // A port that was just free.
  const std::string address = StartCoordinator("gone", {});
  coordinators_.clear();
  std::string output;
  EXPECT_NE(Cli({"status", "--coordinator", address}, &output), 0);
  EXPECT_THAT(output, HasSubstr("nothing listens there: is stylesweep-coordinator running, and on this address?"));
}

TEST_F(CliErrorsTest, ACoordinatorGivenAnotherCertificatesKeySaysSo) {
  if (!MakeCertificate("server") || !MakeCertificate("other")) {
    GTEST_SKIP() << "openssl cannot make a test certificate here";
  }
  for (const std::vector<std::string>& http : {std::vector<std::string>{}, {"--http", "127.0.0.1:0"}}) {
    std::vector<std::string> argv = {bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--db",
                                     Path("c.db"), "--artifacts", Path("artifacts"), "--tls-cert",
                                     Path("server.crt"), "--tls-key", Path("other.key")};
    argv.insert(argv.end(), http.begin(), http.end());
    std::string output;
    EXPECT_NE(RunCommand(argv, &output), 0);
    EXPECT_THAT(output, HasSubstr("tls_key " + Path("other.key") + " does not match tls_cert " + Path("server.crt")));
    EXPECT_THAT(output, Not(HasSubstr("address is taken")));
  }
  // A certificate file that is not PEM, and a missing key, are named too.
  const std::string notes = Write("notes.txt", "not a certificate\n");
  std::string output;
  EXPECT_NE(RunCommand({bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--db", Path("c.db"),
                        "--artifacts", Path("artifacts"), "--tls-cert", notes, "--tls-key", Path("server.key")},
                       &output),
            0);
  EXPECT_THAT(output, HasSubstr("tls_cert " + notes + " holds no PEM certificate"));
  EXPECT_NE(RunCommand({bin_ + "/stylesweep-coordinator", "--listen", "127.0.0.1:0", "--db", Path("c.db"),
                        "--artifacts", Path("artifacts"), "--tls-cert", Path("server.crt"), "--tls-key",
                        Path("missing.key")},
                       &output),
            0);
  EXPECT_THAT(output, HasSubstr("tls_key: cannot read"));
  EXPECT_THAT(output, HasSubstr(Path("missing.key")));
}

std::string Images(const fs::path& images) {
  return "content: " + (images / "cat.png").string() + "\nstyle: " + (images / "starry_night.jpg").string() + "\n";
}

TEST_F(CliErrorsTest, AGridOfAHundredMillionPointsIsCountedExactly) {
  std::string text = "name: big\n" + Images(images_) + "parameters:\n";
  for (const char* key : {"style_weight", "content_weight", "tv_weight", "learning_rate", "steps", "seed",
                          "snapshot_every"}) {
    text += std::string("  ") + key + ": {values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n";
  }
  text += "  image_size: {values: [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]}\n";
  const std::string sweep = Write("big.yaml", text);
  std::string output;
  EXPECT_EQ(Cli({"submit", sweep, "--dry-run"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("the grid has 100000000 points, more than the limit of 100000"));
}

TEST_F(CliErrorsTest, AFileNameThatIsNotUtf8IsNamedNotThrown) {
  fs::copy_file(images_ / "cat.png", dir_ / "\xff\xfe.png");
  const std::string quoted = Write("quoted.yaml", "name: s\ncontent: \"\xff\xfe.png\"\nstyle: " +
                                                      (images_ / "starry_night.jpg").string() + "\n");
  const std::string plain =
      Write("plain.yaml", "name: s\ncontent: \xff\xfe.png\nstyle: " + (images_ / "starry_night.jpg").string() + "\n");
  for (const auto& [sweep, where] : {std::pair{quoted, ":2:11: "}, std::pair{plain, ":2:10: "}}) {
    for (const std::vector<std::string>& command :
         {std::vector<std::string>{"local", sweep, "--db", Path("local.db"), "--artifacts", Path("artifacts")},
          {"submit", sweep, "--dry-run"}}) {
      std::string output;
      EXPECT_EQ(Cli(command, &output), 2) << command[0] << ": " << output;
      EXPECT_THAT(output, HasSubstr(sweep + where + "not UTF-8 text (byte 0xff)")) << command[0];
      EXPECT_THAT(output, Not(HasSubstr("terminate called"))) << command[0];
    }
  }
  // A sweep file whose own name is not UTF-8 cannot lend it to the sweep.
  const std::string unnamed = Write("\xfd.yaml", Images(images_));
  std::string output;
  EXPECT_EQ(Cli({"local", unnamed, "--db", Path("local.db"), "--artifacts", Path("artifacts")}, &output), 2);
  EXPECT_THAT(output, HasSubstr("has no 'name:', and its file name is not UTF-8 text"));
  // A sweep name on the command line that is not UTF-8 is named, not sent.
  for (const char* command : {"status", "cancel", "report"}) {
    EXPECT_EQ(Cli({command, "\xff", "--coordinator", "127.0.0.1:1"}, &output), 2) << command;
    EXPECT_THAT(output, HasSubstr("SWEEP '\xff' is not UTF-8 text, which the names of sweeps")) << command;
  }
}

TEST_F(CliErrorsTest, DeepNestingNamesTheLimit) {
  // 200 levels of indentation; "- - - ..." 10,000 deep on one line; and an
  // alias that holds its own group (which crashed the CLI and would have
  // crashed the coordinator parsing it).
  std::string indented = "name: deep\n" + Images(images_) + "parameters:\n";
  for (int i = 0; i < 200; ++i) indented += std::string(i + 1, ' ') + "k" + std::to_string(i) + ":\n";
  std::string dashes = "name: deep\n" + Images(images_) + "parameters:\n  steps:\n    values:\n      ";
  for (int i = 0; i < 10000; ++i) dashes += "- ";
  const std::string cycle = "name: deep\n" + Images(images_) + "parameters:\n  g: &g {parameters: {g: *g}}\n";
  for (const auto& [name, text, message] :
       {std::tuple{"indented.yaml", indented, "nested deeper than 64 levels"},
        std::tuple{"dashes.yaml", dashes + "1\n", "nested deeper than 64 levels"},
        std::tuple{"cycle.yaml", cycle, "groups nested deeper than 64 levels"}}) {
    const std::string sweep = Write(name, text);
    std::string output;
    EXPECT_EQ(Cli({"submit", sweep, "--dry-run"}, &output), 2) << name << ": " << output;
    EXPECT_THAT(output, HasSubstr(sweep)) << name;
    EXPECT_THAT(output, HasSubstr(message)) << name;
    EXPECT_THAT(output, Not(HasSubstr("bad file"))) << name;
  }
}

}  // namespace
}  // namespace stylesweep
