#include "common/sweep_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

constexpr char kGrid[] = R"(name: layers
method: grid
content: images/cat.png
parameters:
  style:
    value: images/starry.jpg
  style_weight:
    values: [0.001, 0.01]
  style_layers:
    values:
      - [conv1_1, relu2_1]
      - [block3_conv1]
  steps: {value: 20}
)";

TEST(SweepSpecTest, ParsesGridInFileOrder) {
  auto spec = ParseSweep(kGrid, "grid.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "layers");
  ASSERT_EQ(spec->parameters.size(), 5u);
  EXPECT_EQ(spec->parameters[0].name, "content");
  EXPECT_EQ(spec->parameters[1].name, "style");
  EXPECT_EQ(spec->GridSize(), 4u);
}

TEST(SweepSpecTest, ExpandsCartesianProductLastParameterFastest) {
  auto spec = ParseSweep(kGrid, "grid.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto runs = spec->Expand();
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 4u);
  EXPECT_DOUBLE_EQ((*runs)[0].style_weight, 0.001);
  EXPECT_EQ((*runs)[0].style_layers, (std::vector<std::string>{"block1_conv1", "block2_conv1"}));
  EXPECT_DOUBLE_EQ((*runs)[1].style_weight, 0.001);
  EXPECT_EQ((*runs)[1].style_layers, (std::vector<std::string>{"block3_conv1"}));
  EXPECT_DOUBLE_EQ((*runs)[2].style_weight, 0.01);
  for (const RunParams& run : *runs) {
    EXPECT_EQ(run.steps, 20);
    EXPECT_EQ(run.content, "images/cat.png");
    EXPECT_EQ(run.content_layers, (std::vector<std::string>{"block5_conv2"}));  // default
  }
  // Every grid point is distinct.
  std::set<std::string> hashes;
  for (const RunParams& run : *runs) hashes.insert(run.Hash());
  EXPECT_EQ(hashes.size(), 4u);
}

TEST(SweepSpecTest, NameDefaultsToFileStem) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\n", "dir/my-sweep.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "my-sweep");
  EXPECT_EQ(spec->GridSize(), 1u);
}

TEST(SweepSpecTest, ImageRefsAreDistinctWithLines) {
  auto spec = ParseSweep("content: a.png\nparameters:\n  style: {values: [b.png, c.png]}\n", "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto refs = spec->ImageRefs();
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].ref, "a.png");
  EXPECT_EQ(refs[0].line, 1);
  EXPECT_EQ(refs[2].ref, "c.png");
  EXPECT_EQ(refs[2].key, "style");
  EXPECT_EQ(refs[2].line, 3);
}

TEST(SweepSpecTest, SeveralStyleImagesBlend) {
  auto spec = ParseSweep(
      "content: a.png\nparameters:\n  style: {values: [[b.png, c.png], b.png]}\n"
      "  style_blend_weights: {value: [3, 1]}\n",
      "s.yaml");
  ASSERT_FALSE(spec.ok());  // the second point has one image but two weights
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("style_blend_weights has 2 weights for 1 style images"));

  spec = ParseSweep("content: a.png\nstyle: [b.png, c.png]\nstyle_blend_weights: [3, 1]\n", "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ImageRefs().size(), 3u);
  auto runs = spec->Expand();
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ((*runs)[0].style, (std::vector<std::string>{"b.png", "c.png"}));
  EXPECT_EQ((*runs)[0].style_blend_weights, (std::vector<double>{3, 1}));
}

TEST(SweepSpecTest, LoadResolvesImagesAgainstTheFilesDirectory) {
  const auto dir = std::filesystem::temp_directory_path() / "sweep_spec_test";
  std::filesystem::create_directories(dir / "sub");
  { std::ofstream(dir / "sub" / "s.yaml") << "content: ../cat.png\nstyle: /abs/style.png\n"; }
  auto spec = LoadSweepFile((dir / "sub" / "s.yaml").string());
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto runs = spec->Expand();
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ((*runs)[0].content, (dir / "cat.png").lexically_normal().string());
  EXPECT_EQ((*runs)[0].style, std::vector<std::string>{"/abs/style.png"});
}

struct BadSweep {
  const char* yaml;
  const char* expected;  // substring of the error
};

class MalformedSweepTest : public ::testing::TestWithParam<BadSweep> {};

TEST_P(MalformedSweepTest, NamesFileKeyAndLine) {
  auto spec = ParseSweep(GetParam().yaml, "bad.yaml");
  ASSERT_FALSE(spec.ok()) << "accepted: " << GetParam().yaml;
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, MalformedSweepTest,
    ::testing::Values(
        BadSweep{"content: a.png\nstyle: b.png\nstyle_wieght: 1\n", "bad.yaml:3:1: style_wieght: unknown key (did you mean 'style_weight'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  lr: {value: 1}\n", "bad.yaml:4:3: parameters.lr: unknown key"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  steps: {values: []}\n",
                 "bad.yaml:4:19: parameters.steps.values: must list at least one value"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  steps: {values: [10, ten]}\n",
                 "bad.yaml:4:24: parameters.steps.values[1]: expected an integer, got 'ten'"},
        BadSweep{"content: a.png\nstyle: b.png\nsteps: 0\n", "bad.yaml:3:8: steps: steps must be positive"},
        BadSweep{"content: a.png\nstyle: b.png\nimage_size: 8\n", "image_size must be from 16 to 16384 pixels, got 8"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_layers: [block9_conv1]\n",
                 "bad.yaml:3:15: style_layers: unknown VGG19 layer 'block9_conv1'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {values: [1, 1]}\n",
                 "parameters.style_weight.values[1]: duplicate value"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: 3\n",
                 "parameters.style_weight: expected a mapping with 'value' or 'values'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 1, max: 2}\n",
                 "distributions need method: random or bayes"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {valeus: [1]}\n",
                 "parameters.style_weight.valeus: unknown key (did you mean 'values'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  content: {value: c.png}\n",
                 "parameters.content: is set twice"},
        BadSweep{"style: b.png\n", "'content' is required"},
        BadSweep{"content: a.png\nstyle: b.png\nmethod: hyperopt\n", "bad.yaml:3:9: method: unknown method 'hyperopt'"},
        BadSweep{"content: a.png\nstyle: b.png\nlearning_rate: fast\n", "learning_rate: expected a number, got 'fast'"},
        BadSweep{"content: a.png\nstyle: b.png\ntv_weight: -1\n", "tv_weight must be >= 0"},
        BadSweep{"content: a.png\nstyle: [b.png\n", "bad.yaml:3:1: not valid YAML"},
        BadSweep{"- content\n", "bad.yaml: a sweep must be a YAML mapping"},
        BadSweep{"content: a.png\nstyle: b.png\npreprocess: keras\n", "preprocess must be 'torchvision' or 'caffe'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  steps: {values: [1,2,3,4,5,6,7,8,9,10]}\n"
                 "  seed: {values: [1,2,3,4,5,6,7,8,9,10]}\n  image_size: {values: [16,17,18,19,20,21,22,23,24,25]}\n"
                 "  tv_weight: {values: [1,2,3,4,5,6,7,8,9,10]}\n  learning_rate: {values: [1,2,3,4,5,6,7,8,9,10]}\n"
                 "  style_weight: {values: [1,2]}\n",
                 "more than the limit of 100000"}));

}  // namespace
}  // namespace stylesweep
