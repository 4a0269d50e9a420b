#include "tools/submission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/limits.h"

namespace stylesweep {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class SubmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("stylesweep_submission_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "models");
    Write("content.png", "png bytes");
    Write("style.png", "more png bytes");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

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

  std::filesystem::path dir_;
};

TEST_F(SubmissionTest, ReadsImagesAndResolvesWeightsAgainstTheSweepFile) {
  Write("models/vgg19.pth", "weights bytes");
  std::string checked;
  auto submission = PrepareSubmission(Sweep("weights: models/vgg19.pth\n"), [&](const std::string& path) {
    checked = path;
    return absl::OkStatus();
  });
  ASSERT_TRUE(submission.ok()) << submission.status();
  EXPECT_EQ(submission->files.at("content.png"), "png bytes");
  EXPECT_EQ(submission->files.at("style.png"), "more png bytes");
  EXPECT_EQ(submission->weights.at("models/vgg19.pth"), Path("models/vgg19.pth"));
  EXPECT_EQ(checked, Path("models/vgg19.pth"));
  EXPECT_EQ(submission->files.count("models/vgg19.pth"), 0u);  // weights are not sent
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
  auto bad = PrepareSubmission(Sweep("weights: models/bad.pth\n"), [](const std::string&) {
    return absl::InvalidArgumentError("not a PyTorch file; convert it with: python3 tools/convert_vgg19_weights.py");
  });
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
// are sparse files, so only their sizes are large.
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

}  // namespace
}  // namespace stylesweep
