#include "tools/submission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/limits.h"
#include "tests/testing/crafted_images.h"

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::JpegDeclaring;
using testing::PngDeclaring;

namespace fs = std::filesystem;

// Different bytes for each tag, a 4 x 3 PNG by its header.
std::string Png(const std::string& tag) { return PngDeclaring(4, 3) + tag; }

class SubmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("stylesweep_submission_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::remove_all(Outside());
    std::filesystem::create_directories(dir_ / "models");
    std::filesystem::create_directories(Outside());
    Write("content.png", Png("content"));
    Write("style.png", Png("style"));
    // Where the sweep's directory and the one beside it really are (the
    // temporary directory may itself be reached through a link).
    real_dir_ = fs::canonical(dir_);
    real_outside_ = fs::canonical(Outside());
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::remove_all(Outside());
  }

  // A directory beside the sweep's, holding a valid image.
  fs::path Outside() const { return dir_.string() + "_outside"; }

  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::string Sweep(const std::string& weights_line) {
    Write("sweep.yaml",
          "name: w\n"
          "content: content.png\n"
          "style: style.png\n" +
              weights_line +
              "parameters:\n"
              "  steps: {values: [1, 2]}\n");
    return Path("sweep.yaml");
  }

  // A sweep whose content image is `content_ref`, on line 2.
  std::string SweepWithContent(const std::string& content_ref) {
    Write("sweep.yaml", "name: w\ncontent: " + content_ref + "\nstyle: style.png\nsteps: 1\n");
    return Path("sweep.yaml");
  }

  // The message of the error preparing `sweep` gives (the test fails if none).
  std::string Refusal(const std::string& sweep, const std::vector<std::string>& allowed_dirs = {}) {
    auto submission = PrepareSubmission(sweep, SubmissionOptions{nullptr, allowed_dirs});
    EXPECT_FALSE(submission.ok()) << "prepared";
    return submission.ok() ? "" : std::string(submission.status().message());
  }

  std::filesystem::path dir_;
  fs::path real_dir_;
  fs::path real_outside_;
};

TEST_F(SubmissionTest, ReadsImagesAndResolvesWeightsAgainstTheSweepFile) {
  Write("models/vgg19.pth", "weights bytes");
  std::string checked;
  auto submission = PrepareSubmission(Sweep("weights: models/vgg19.pth\n"), SubmissionOptions{[&](const std::string& path) {
    checked = path;
    return absl::OkStatus();
  }, {}});
  ASSERT_TRUE(submission.ok()) << submission.status();
  EXPECT_EQ(submission->files.at("content.png"), Png("content"));
  EXPECT_EQ(submission->files.at("style.png"), Png("style"));
  EXPECT_EQ(submission->weights.at("models/vgg19.pth"), Path("models/vgg19.pth"));
  EXPECT_EQ(checked, Path("models/vgg19.pth"));
  EXPECT_EQ(submission->files.count("models/vgg19.pth"), 0u);  // weights are not sent
}

// A sweep that ranks runs by losses its own parameters scale is sent, with
// a warning that says so; one ranked by an evaluation metric has none.
TEST_F(SubmissionTest, CarriesTheSweepsWarnings) {
  auto submission = PrepareSubmission(Sweep(""), SubmissionOptions{});
  ASSERT_TRUE(submission.ok()) << submission.status();
  EXPECT_TRUE(submission->warnings.empty());
  Write("sweep.yaml",
        "content: content.png\nstyle: style.png\nmetric: {name: loss/total}\n"
        "parameters:\n  style_weight: {values: [1, 2]}\n");
  submission = PrepareSubmission(Path("sweep.yaml"), SubmissionOptions{});
  ASSERT_TRUE(submission.ok()) << submission.status();
  ASSERT_EQ(submission->warnings.size(), 1u);
  EXPECT_THAT(submission->warnings[0], HasSubstr("metric loss/total ranks runs by their own weighted losses"));
}

TEST_F(SubmissionTest, MissingEmptyOrUnusableWeightsNameTheFileLineAndPath) {
  auto missing = PrepareSubmission(Sweep("weights: models/missing.pth\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              AllOf(HasSubstr(Path("sweep.yaml") + ":4"), HasSubstr("weights"), HasSubstr("models/missing.pth"),
                    HasSubstr(Path("models/missing.pth")), HasSubstr("no such file")));

  Write("models/empty.pth", "");
  auto empty = PrepareSubmission(Sweep("weights: models/empty.pth\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));

  Write("models/bad.pth", "not a model");
  auto bad = PrepareSubmission(Sweep("weights: models/bad.pth\n"), SubmissionOptions{[](const std::string&) {
    return absl::InvalidArgumentError("not a PyTorch file; convert it with: python3 tools/convert_vgg19_weights.py");
  }, {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              AllOf(HasSubstr(Path("sweep.yaml") + ":4"), HasSubstr("convert_vgg19_weights.py")));
}

TEST_F(SubmissionTest, MissingImageNamesThePath) {
  std::filesystem::remove(dir_ / "style.png");
  auto submission = PrepareSubmission(Sweep(""));
  ASSERT_FALSE(submission.ok());
  EXPECT_THAT(std::string(submission.status().message()),
              AllOf(HasSubstr(Path("sweep.yaml") + ":3"), HasSubstr("style.png")));
}

// Sizes come from the file system before anything is read: the images here
// are sparse files (a PNG header, then zeros), so only their sizes are large.
TEST_F(SubmissionTest, RefusesAnImageOverTheLimitFromItsSize) {
  std::filesystem::resize_file(dir_ / "style.png", kMaxImageBytes + 1);
  auto submission = PrepareSubmission(Sweep(""));
  ASSERT_FALSE(submission.ok());
  EXPECT_EQ(submission.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(submission.status().message()),
              AllOf(HasSubstr(Path("sweep.yaml") + ":3: style: image 'style.png' (" + Path("style.png") + ")"),
                    HasSubstr("is 33554433 bytes; an image may be at most 32 MiB (33554432 bytes)")));

  std::filesystem::resize_file(dir_ / "style.png", kMaxImageBytes);
  EXPECT_TRUE(PrepareSubmission(Sweep("")).ok());
}

TEST_F(SubmissionTest, RefusesImagesTogetherOverTheLimit) {
  std::filesystem::resize_file(dir_ / "content.png", 30 * kMiB);
  std::filesystem::resize_file(dir_ / "style.png", 18 * kMiB + 1);
  auto submission = PrepareSubmission(Sweep(""));
  ASSERT_FALSE(submission.ok());
  EXPECT_THAT(std::string(submission.status().message()),
              AllOf(HasSubstr(Path("sweep.yaml") + ":3: style: image 'style.png'"),
                    HasSubstr("brings the sweep's images to 50331649 bytes; the images of one sweep may be at most "
                              "48 MiB (50331648 bytes) together")));
}

TEST_F(SubmissionTest, RefusesASweepFileOverTheLimitBeforeReadingIt) {
  const std::string path = Sweep("");
  std::filesystem::resize_file(path, 60 * kMiB);
  auto submission = PrepareSubmission(path);
  ASSERT_FALSE(submission.ok());
  EXPECT_EQ(submission.status().message(),
            path + " is 62914560 bytes; a sweep file may be at most 1 MiB (1048576 bytes)");
}

// ------------------------------------------------ where images may come from

TEST_F(SubmissionTest, ALinkLeadingOutOfTheSweepsDirectoryIsRefused) {
  std::ofstream(Outside() / "secret.png", std::ios::binary) << Png("secret");
  fs::create_symlink(Outside() / "secret.png", dir_ / "link.png");
  EXPECT_EQ(Refusal(SweepWithContent("link.png")),
            Path("sweep.yaml") + ":2: content: image 'link.png' (" + Path("link.png") + ", which resolves to " +
                (real_outside_ / "secret.png").string() + ") is outside the sweep file's directory " +
                real_dir_.string() + "; add --allow-dir DIR to allow another directory");
  // A linked directory leads out just the same.
  fs::create_directory_symlink(Outside(), dir_ / "elsewhere");
  EXPECT_THAT(Refusal(SweepWithContent("elsewhere/secret.png")),
              HasSubstr("is outside the sweep file's directory " + real_dir_.string()));
}

TEST_F(SubmissionTest, DotDotOutOfTheSweepsDirectoryIsRefused) {
  std::ofstream(Outside() / "secret.png", std::ios::binary) << Png("secret");
  const std::string ref = "../" + Outside().filename().string() + "/secret.png";
  EXPECT_EQ(Refusal(SweepWithContent(ref)),
            Path("sweep.yaml") + ":2: content: image '" + ref + "' (" + (Outside() / "secret.png").string() +
                (real_outside_ != Outside() ? ", which resolves to " + (real_outside_ / "secret.png").string() : "") +
                ") is outside the sweep file's directory " + real_dir_.string() +
                "; add --allow-dir DIR to allow another directory");
  // Leaving and coming back in is fine: only where it ends counts.
  const std::string back = "../" + dir_.filename().string() + "/content.png";
  EXPECT_TRUE(PrepareSubmission(SweepWithContent(back)).ok());
}

TEST_F(SubmissionTest, AnAbsolutePathOutsideIsRefused) {
  EXPECT_EQ(Refusal(SweepWithContent("/etc/passwd")),
            Path("sweep.yaml") + ":2: content: image '/etc/passwd' (/etc/passwd) is outside the sweep file's "
                                 "directory " + real_dir_.string() + "; add --allow-dir DIR to allow another directory");
}

TEST_F(SubmissionTest, AllowedDirectoriesAreNamedInTheRefusal) {
  fs::create_directories(dir_ / "unrelated");
  EXPECT_EQ(Refusal(SweepWithContent("/etc/passwd"), {(dir_ / "unrelated").string(), Outside().string()}),
            Path("sweep.yaml") + ":2: content: image '/etc/passwd' (/etc/passwd) is outside the sweep file's "
                                 "directory " + real_dir_.string() + " and the allowed directories " +
                (real_dir_ / "unrelated").string() + ", " + real_outside_.string() +
                "; add --allow-dir DIR to allow another directory");
  EXPECT_EQ(Refusal(SweepWithContent("content.png"), {(dir_ / "missing").string()}).rfind("--allow-dir ", 0), 0u);
  EXPECT_THAT(Refusal(SweepWithContent("content.png"), {Path("content.png")}),
              AllOf(HasSubstr("--allow-dir " + Path("content.png")), HasSubstr("not a directory")));
}

TEST_F(SubmissionTest, SystemTreesAreRefusedEvenWhenAllowed) {
  const std::string environ_message = Refusal(SweepWithContent("/proc/self/environ"), {"/proc", "/"});
  EXPECT_THAT(environ_message, AllOf(HasSubstr(Path("sweep.yaml") + ":2: content: image '/proc/self/environ' "
                                               "(/proc/self/environ, which resolves to /proc/"),
                                     HasSubstr("/environ) is under /proc, which holds no images; a sweep may not "
                                               "name files under /proc, /dev or /sys, even with --allow-dir")));
  EXPECT_EQ(Refusal(SweepWithContent("/dev/zero"), {"/"}),
            Path("sweep.yaml") + ":2: content: image '/dev/zero' (/dev/zero) is under /dev, which holds no images; a "
                                 "sweep may not name files under /proc, /dev or /sys, even with --allow-dir");
  EXPECT_THAT(Refusal(SweepWithContent("/sys/kernel/notes"), {"/sys"}), HasSubstr("is under /sys"));
  // Through a link inside the sweep's directory too.
  fs::create_symlink("/dev/zero", dir_ / "zero.png");
  EXPECT_THAT(Refusal(SweepWithContent("zero.png"), {"/"}),
              HasSubstr("(" + Path("zero.png") + ", which resolves to /dev/zero) is under /dev"));
}

// Opening a FIFO would wait for a writer forever: it is refused from its
// type alone.
TEST_F(SubmissionTest, FifosAndDirectoriesAreNotRegularFiles) {
  ASSERT_EQ(::mkfifo(Path("fifo.png").c_str(), 0600), 0);
  EXPECT_EQ(Refusal(SweepWithContent("fifo.png")),
            Path("sweep.yaml") + ":2: content: image 'fifo.png' (" + Path("fifo.png") +
                ") is a FIFO, not a regular file");
  fs::create_directories(dir_ / "folder.png");
  EXPECT_EQ(Refusal(SweepWithContent("folder.png")),
            Path("sweep.yaml") + ":2: content: image 'folder.png' (" + Path("folder.png") +
                ") is a directory, not a regular file");
}

TEST_F(SubmissionTest, FilesThatAreNotImagesAreRefused) {
  Write("notes.png", "these are my notes\n");
  EXPECT_EQ(Refusal(SweepWithContent("notes.png")),
            Path("sweep.yaml") + ":2: content: image 'notes.png' (" + Path("notes.png") +
                "): not a PNG or JPEG: the first bytes are 74 68 65 73 65 20 61 72 (\"these ar\"); a PNG starts with "
                "89 50 4e 47, a JPEG with ff d8");
  Write("cut.png", PngDeclaring(4, 3).substr(0, 20));
  EXPECT_THAT(Refusal(SweepWithContent("cut.png")), HasSubstr("(" + Path("cut.png") + "): truncated PNG header"));
  Write("empty.png", "");
  EXPECT_EQ(Refusal(SweepWithContent("empty.png")),
            Path("sweep.yaml") + ":2: content: image 'empty.png' (" + Path("empty.png") + ") is empty");
}

TEST_F(SubmissionTest, AnImageDeclaringTooManyPixelsIsRefusedFromItsHeader) {
  Write("bomb.png", PngDeclaring(15000, 15000));
  EXPECT_EQ(Refusal(SweepWithContent("bomb.png")),
            Path("sweep.yaml") + ":2: content: image 'bomb.png' (" + Path("bomb.png") +
                ") declares 15000x15000 pixels (225000000); an image may have at most 64 Mi pixels (67108864, e.g. "
                "8192x8192)");
  Write("big.jpg", JpegDeclaring(9000, 8000));
  EXPECT_THAT(Refusal(SweepWithContent("big.jpg")), HasSubstr("declares 9000x8000 pixels"));
  Write("edge.jpg", JpegDeclaring(8192, 8192));
  EXPECT_TRUE(PrepareSubmission(SweepWithContent("edge.jpg")).ok());
}

TEST_F(SubmissionTest, AnAllowedDirectoryAndLinksThatStayInsideAreFine) {
  std::ofstream(Outside() / "shared.png", std::ios::binary) << Png("shared");
  const std::string ref = (Outside() / "shared.png").string();
  EXPECT_THAT(Refusal(SweepWithContent(ref)), HasSubstr("is outside"));
  auto allowed = PrepareSubmission(SweepWithContent(ref), SubmissionOptions{nullptr, {Outside().string()}});
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->files.at(ref), Png("shared"));

  // A link inside the directory to a file inside it, and a sub-directory.
  fs::create_directories(dir_ / "images");
  Write("images/cat.png", Png("cat"));
  fs::create_symlink(dir_ / "images" / "cat.png", dir_ / "alias.png");
  auto linked = PrepareSubmission(SweepWithContent("alias.png"));
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_EQ(linked->files.at("alias.png"), Png("cat"));

  // The sweep file reached through a linked directory: its images are
  // judged against where that directory really is.
  fs::create_directory_symlink(dir_, Outside() / "sweeps");
  auto through_link = PrepareSubmission((Outside() / "sweeps" / "sweep.yaml").string());
  ASSERT_TRUE(through_link.ok()) << through_link.status();
  EXPECT_EQ(through_link->files.at("alias.png"), Png("cat"));
}

}  // namespace
}  // namespace stylesweep
