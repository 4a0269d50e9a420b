#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "common/files.h"
#include "common/layers.h"
#include "common/limits.h"
#include "common/run_params.h"
#include "common/run_state.h"
#include "common/text.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

TEST(LayersTest, AcceptsKerasAndAliases) {
  EXPECT_EQ(*CanonicalLayerName("block4_conv2"), "block4_conv2");
  EXPECT_EQ(*CanonicalLayerName("conv4_2"), "block4_conv2");
  EXPECT_EQ(*CanonicalLayerName("relu4_2"), "block4_conv2");
  EXPECT_EQ(*CanonicalLayerName("RELU1_1"), "block1_conv1");
}

TEST(LayersTest, UnknownNameSuggests) {
  auto r = CanonicalLayerName("block4_conv5");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("did you mean"));
}

TEST(LayersTest, FeatureIndexIsTheReluAfterTheConv) {
  EXPECT_EQ(LayerFeatureIndex("block1_conv1"), 1);
  EXPECT_EQ(LayerFeatureIndex("block5_conv2"), 31);
  EXPECT_EQ(LayerFeatureIndex("block3_conv4"), 17);
  EXPECT_EQ(LayerFeatureIndex("nope"), -1);
  EXPECT_EQ(AllLayerNames().size(), 16u);
}

TEST(RunParamsTest, JsonRoundTripAndStableHash) {
  RunParams p;
  p.content = "a.png";
  p.style = {"b.png"};
  p.style_layers = {"conv1_1"};
  ASSERT_TRUE(p.Validate().ok());
  EXPECT_EQ(p.style_layers[0], "block1_conv1");
  auto back = RunParams::FromJson(p.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ToJson(), p.ToJson());
  EXPECT_EQ(back->Hash(), p.Hash());
  back->seed = 7;
  EXPECT_NE(back->Hash(), p.Hash());
}

TEST(RunParamsTest, DefaultsAreTheTutorials) {
  RunParams p;
  EXPECT_DOUBLE_EQ(p.style_weight, 1e-2);
  EXPECT_DOUBLE_EQ(p.content_weight, 1e4);
  EXPECT_DOUBLE_EQ(p.tv_weight, 30);
  EXPECT_DOUBLE_EQ(p.learning_rate, 0.02);
  EXPECT_EQ(p.steps, 1000);
  EXPECT_EQ(p.image_size, 512);
  EXPECT_EQ(p.content_layers, (std::vector<std::string>{"block5_conv2"}));
  EXPECT_EQ(p.style_layers.size(), 5u);
}

TEST(RunParamsTest, RejectsWrongTypes) {
  auto r = RunParams::FromJson({{"content", "a"}, {"style", "b"}, {"steps", "many"}});
  EXPECT_FALSE(r.ok());
}

TEST(RunParamsTest, EngineOptionsDefaultToTheTutorial) {
  RunParams p;
  EXPECT_EQ(p.optimizer, "adam");
  EXPECT_EQ(p.adam_epsilon_mode, "tf");
  EXPECT_EQ(p.init, "content");
  EXPECT_FALSE(p.preserve_colors);
  EXPECT_DOUBLE_EQ(p.style_scale, 1.0);
  EXPECT_EQ(p.pooling, "max");
  EXPECT_TRUE(p.style_layer_weights.empty());
  EXPECT_EQ(p.precision, "fp32");
  EXPECT_TRUE(p.multires_sizes.empty());
  EXPECT_TRUE(p.multires_steps.empty());
  for (const char* key : {"optimizer", "adam_epsilon_mode", "init", "preserve_colors", "style_scale", "pooling",
                          "style_layer_weights", "precision", "multires_sizes", "multires_steps"}) {
    bool defined = false;
    for (const ParamDef& def : RunParamDefs()) defined = defined || def.name == std::string(key);
    EXPECT_TRUE(defined) << key;
  }
}

TEST(RunParamsTest, EngineOptionsRoundTripThroughJson) {
  nlohmann::json j = {{"content", "a"},        {"style", "b"},          {"optimizer", "lbfgs"},
                      {"init", "noise"},       {"preserve_colors", true}, {"style_scale", 0.5},
                      {"pooling", "avg"},      {"precision", "bf16"},   {"adam_epsilon_mode", "torch"},
                      {"style_layer_weights", {1, 0, 2, 1, 1}}};
  auto p = RunParams::FromJson(j);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->optimizer, "lbfgs");
  EXPECT_TRUE(p->preserve_colors);
  EXPECT_EQ(p->style_layer_weights, (std::vector<double>{1, 0, 2, 1, 1}));
  auto back = RunParams::FromJson(p->ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Hash(), p->Hash());
  // The sweep language passes words as strings.
  j["preserve_colors"] = "false";
  p = RunParams::FromJson(j);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->preserve_colors);
}

TEST(RunParamsTest, MultiresOverridesSizeAndSteps) {
  auto p = RunParams::FromJson(
      {{"content", "a"}, {"style", "b"}, {"multires_sizes", {128, 256}}, {"multires_steps", {300, 100}}});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->image_size, 256);
  EXPECT_EQ(p->steps, 400);
}

TEST(RunParamsTest, BadEngineOptionsAreNamed) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"optimizer", "sgd"}}, "optimizer must be 'adam' or 'lbfgs', got 'sgd'"},
      {{{"adam_epsilon_mode", "keras"}}, "adam_epsilon_mode must be 'tf' or 'torch'"},
      {{{"init", "random"}}, "init must be 'content' or 'style' or 'noise'"},
      {{{"pooling", "min"}}, "pooling must be 'max' or 'avg'"},
      {{{"precision", "fp16"}}, "precision must be 'fp32' or 'bf16'"},
      {{{"preserve_colors", "maybe"}}, "preserve_colors must be true or false"},
      {{{"style_scale", 0}}, "style_scale must be > 0"},
      {{{"style_layer_weights", {1, -1, 1, 1, 1}}}, "style_layer_weights must be >= 0"},
      {{{"style_layer_weights", {1, 1}}}, "style_layer_weights has 2 weights for 5 style layers"},
      {{{"multires_sizes", {8}}, {"multires_steps", {1}}}, "multires_sizes must be from 16"},
      {{{"multires_sizes", {64}}, {"multires_steps", {0}}}, "multires_steps must be positive"},
      {{{"multires_sizes", {64, 128}}, {"multires_steps", {10}}}, "multires_sizes has 2 sizes but multires_steps has 1"},
  };
  for (const auto& [extra, message] : cases) {
    nlohmann::json j = {{"content", "a"}, {"style", "b"}};
    j.update(extra);
    auto p = RunParams::FromJson(j);
    ASSERT_FALSE(p.ok()) << extra.dump();
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()), ::testing::HasSubstr(message)) << extra.dump();
  }
}

TEST(LimitsTest, ByteLimitsNameTheirUnit) {
  EXPECT_EQ(DescribeByteLimit(kMaxSweepYamlBytes), "1 MiB (1048576 bytes)");
  EXPECT_EQ(DescribeByteLimit(kMaxHttpBodyBytes), "16 KiB (16384 bytes)");
  EXPECT_EQ(DescribeByteLimit(1000), "1000 bytes");
}

TEST(RunStateTest, NamesRoundTrip) {
  for (RunState s : {RunState::kQueued, RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kLost,
                     RunState::kCancelled, RunState::kPruned}) {
    EXPECT_EQ(ParseRunState(RunStateName(s)), s);
  }
  EXPECT_FALSE(ParseRunState("DONE").has_value());
  EXPECT_TRUE(IsTerminal(RunState::kSucceeded));
  EXPECT_FALSE(IsTerminal(RunState::kLost));
}

TEST(TextTest, ClosestMatch) {
  EXPECT_EQ(ClosestMatch("stpes", {"steps", "seed"}), "steps");
  EXPECT_EQ(ClosestMatch("completely_else", {"steps", "seed"}), "");
}

TEST(TextTest, FirstInvalidUtf8) {
  constexpr size_t kNone = std::string_view::npos;
  EXPECT_EQ(FirstInvalidUtf8(""), kNone);
  EXPECT_EQ(FirstInvalidUtf8("plain ASCII\n"), kNone);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa8 \xf4\x8f\xbf\xbf"), kNone);  // é € 🎨 U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8(std::string_view("a\0b", 3)), kNone);
  EXPECT_EQ(FirstInvalidUtf8("la\x87" "ers"), 2u);  // a continuation byte alone
  EXPECT_EQ(FirstInvalidUtf8("caf\xe9.yaml"), 3u);  // Latin-1
  EXPECT_EQ(FirstInvalidUtf8("ab\xc3"), 2u);  // cut short
  EXPECT_EQ(FirstInvalidUtf8("\xe2\x82x"), 0u);  // cut short inside
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);  // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);  // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x80\x80\xaf"), 0u);  // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);  // a surrogate (U+D800)
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xff"), 0u);
}

TEST(TextTest, ToValidUtf8ReplacesWhatIsNotUtf8) {
  EXPECT_EQ(ToValidUtf8("a\xff\xfe.png"), "a\xef\xbf\xbd\xef\xbf\xbd.png");
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(FilesTest, AtomicWriteAndRead) {
  const auto dir = std::filesystem::temp_directory_path() / "files_test" / "nested";
  std::filesystem::remove_all(dir.parent_path());
  const std::string path = (dir / "f.bin").string();
  ASSERT_TRUE(WriteFileAtomically(path, "hello").ok());
  EXPECT_EQ(*ReadFileToString(path), "hello");
  ASSERT_TRUE(WriteFileAtomically(path, "bye").ok());
  EXPECT_EQ(*ReadFileToString(path), "bye");
  // No temporary files are left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
}

TEST(FilesTest, ErrorsNameThePath) {
  auto r = ReadFileToString("/nonexistent/x.png");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsNotFound(r.status()));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/x.png"));
  // A path under a regular file cannot be created, even by root.
  const auto file = std::filesystem::temp_directory_path() / "files_test_plain";
  ASSERT_TRUE(WriteFileAtomically(file.string(), "x").ok());
  absl::Status s = WriteFileAtomically((file / "sub" / "y").string(), "y");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("files_test_plain/sub/y"));
}

// Permission bits of `path`, or -1 when it cannot be examined.
int ModeOf(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Sets the umask for one test and puts the old one back.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST(FilesTest, OwnerOnlyIgnoresAPermissiveUmask) {
  const auto root = std::filesystem::temp_directory_path() / "files_test_owner_only";
  std::filesystem::remove_all(root);
  for (mode_t mask : {mode_t{022}, mode_t{0}}) {
    ScopedUmask umask(mask);
    const auto dir = root / "a" / "b";
    ASSERT_TRUE(WriteFileAtomically((dir / "f.bin").string(), "secret", FileAccess::kOwnerOnly).ok());
    EXPECT_EQ(ModeOf(dir / "f.bin"), 0600) << "umask " << mask;
    EXPECT_EQ(ModeOf(dir), 0700) << "umask " << mask;
    EXPECT_EQ(ModeOf(root / "a"), 0700) << "umask " << mask;
    EXPECT_EQ(ModeOf(root), 0700) << "umask " << mask;
    // Replacing the file keeps it owner-only.
    ASSERT_TRUE(WriteFileAtomically((dir / "f.bin").string(), "again", FileAccess::kOwnerOnly).ok());
    EXPECT_EQ(ModeOf(dir / "f.bin"), 0600);
    std::filesystem::remove_all(root);
  }
}

TEST(FilesTest, DefaultAccessFollowsTheUmask) {
  const auto root = std::filesystem::temp_directory_path() / "files_test_umask";
  std::filesystem::remove_all(root);
  ScopedUmask umask(022);
  ASSERT_TRUE(WriteFileAtomically((root / "sub" / "report.html").string(), "<p>").ok());
  EXPECT_EQ(ModeOf(root / "sub" / "report.html"), 0644);
  EXPECT_EQ(ModeOf(root / "sub"), 0755);
  std::filesystem::remove_all(root);
}

TEST(FilesTest, OwnerOnlyLeavesExistingDirectoriesAlone) {
  const auto root = std::filesystem::temp_directory_path() / "files_test_existing";
  std::filesystem::remove_all(root);
  ScopedUmask umask(022);
  std::filesystem::create_directories(root);
  ASSERT_EQ(ModeOf(root), 0755);
  ASSERT_TRUE(CreateDirectories((root / "x" / "y").string(), FileAccess::kOwnerOnly).ok());
  EXPECT_EQ(ModeOf(root), 0755);
  EXPECT_EQ(ModeOf(root / "x"), 0700);
  EXPECT_EQ(ModeOf(root / "x" / "y"), 0700);
  // A file in the way is an error naming the path.
  ASSERT_TRUE(WriteFileAtomically((root / "plain").string(), "x").ok());
  absl::Status s = CreateDirectories((root / "plain" / "z").string(), FileAccess::kOwnerOnly);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("plain"));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace stylesweep
