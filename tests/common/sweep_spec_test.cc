#include "common/sweep_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cfloat>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <set>

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

TEST(SweepSpecTest, RefusesDeepFlowNestingWithoutCrashing) {
  for (const std::string& text : {std::string(100000, '['), std::string(100000, '[') + std::string(100000, ']'),
                                   std::string(100000, '{'), "content: a.png\nstyle: " + std::string(100000, '[')}) {
    auto spec = ParseSweep(text, "deep.yaml");
    ASSERT_FALSE(spec.ok());
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr("nested deeper than 64 levels"));
  }
  auto spec = ParseSweep("content: a.png\nstyle: " + std::string(100000, '['), "deep.yaml");
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("deep.yaml:2: nested deeper"));
}

TEST(SweepSpecTest, BracketsInStringsCommentsAndPlainScalarsDoNotCountAsNesting) {
  const std::string many(100, '[');
  auto spec = ParseSweep("content: 'a" + many + ".png'\nstyle: \"b" + many + ".png\"  # " + many +
                             "\nparameters:\n  learning_rate: {values: [[1, 2][0], 3]}\n",
                         "s.yaml");
  ASSERT_FALSE(spec.ok());  // the nested list is not a valid value, but it was read
  EXPECT_THAT(std::string(spec.status().message()), Not(HasSubstr("nested deeper")));
  spec = ParseSweep("content: a" + many + ".png\nstyle: b.png\n", "s.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
  // 64 levels are still read (and rejected for what they hold, not their depth).
  spec = ParseSweep("content: a.png\nstyle: " + std::string(64, '[') + "b.png" + std::string(64, ']') + "\n", "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), Not(HasSubstr("nested deeper")));
}

TEST(SweepSpecTest, RefusesDeepBlockNestingWithoutCrashing) {
  // Indentation: a mapping 200 levels deep (yaml-cpp itself gave up at 500
  // with "bad file").
  std::string mapping = "content: a.png\nstyle: b.png\nparameters:\n";
  for (int i = 0; i < 200; ++i) mapping += std::string(i + 1, ' ') + "k" + std::to_string(i) + ":\n";
  // Entries that nest on one line: "- - - ... 1" and "? ? ? ... 1", 10,000 deep.
  std::string dashes = "content: a.png\nstyle: b.png\nparameters:\n  steps:\n    values:\n      ";
  std::string questions = dashes;
  for (int i = 0; i < 10000; ++i) {
    dashes += "- ";
    questions += "? ";
  }
  // A sequence of sequences, one level a line.
  std::string lines = "content: a.png\nstyle: b.png\nparameters:\n  steps:\n    values:\n";
  for (int i = 0; i < 200; ++i) lines += std::string(i + 6, ' ') + "-\n";
  for (const std::string& text : {mapping, dashes + "1\n", questions + "1\n", lines}) {
    auto spec = ParseSweep(text, "deep.yaml");
    ASSERT_FALSE(spec.ok());
    EXPECT_THAT(std::string(spec.status().message()), HasSubstr("nested deeper than 64 levels")) << spec.status();
  }
  auto spec = ParseSweep(mapping, "deep.yaml");
  // The root mapping is level 0; "k63:" on line 67 is level 65.
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("deep.yaml:68: nested deeper than 64 levels"));
  // Block and flow nesting add up.
  std::string mixed = "content: a.png\nstyle: b.png\nparameters:\n";
  for (int i = 0; i < 40; ++i) mixed += std::string(i + 1, ' ') + "k" + std::to_string(i) + ":\n";
  spec = ParseSweep(mixed + std::string(41, ' ') + "v: " + std::string(30, '[') + "\n", "deep.yaml");
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("nested deeper than 64 levels"));
}

TEST(SweepSpecTest, RealNestingAndBlockScalarsDoNotCountAsDeep) {
  // A block scalar's text is text, whatever it looks like.
  std::string text = "content: a.png\nstyle: b.png\ndescription: |\n";
  for (int i = 0; i < 100; ++i) text += "  " + std::string(i, ' ') + "- - - [[[{{{\n";
  text += "parameters:\n  optimizer:\n    parameters:\n      name:\n        values:\n          - adam\n"
          "          - lbfgs\n  style_layers:\n    values:\n      - - conv1_1\n        - conv2_1\n      - - conv3_1\n";
  auto spec = ParseSweep(text, "s.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->GridSize(), 4u);
}

TEST(SweepSpecTest, AnAliasThatHoldsItsOwnGroupIsRefusedWithoutCrashing) {
  // 31 bytes that sent the parser round the group for ever (a stack overflow).
  auto spec = ParseSweep("content: a.png\nstyle: b.png\nparameters:\n  g: &g {parameters: {g: *g}}\n", "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("groups nested deeper than 64 levels"));
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("does an alias (*name) refer to a group that holds it?"));
  // Aliases that repeat a value many times are still only read once each.
  std::string laughs = "content: a.png\nstyle: b.png\ndescription: [&a [x, x, x, x, x, x, x, x, x, x]";
  std::string previous = "a";
  for (int i = 1; i < 10; ++i) {
    const std::string name = "b" + std::to_string(i);
    laughs += ", &" + name + " [";
    for (int k = 0; k < 10; ++k) laughs += (k ? ", *" : "*") + previous;
    laughs += "]";
    previous = name;
  }
  spec = ParseSweep(laughs + "]\n", "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("description: expected a string, got a list"));
}

TEST(SweepSpecTest, TextThatIsNotUtf8IsNamedWithItsLine) {
  auto spec = ParseSweep("name: s\ncontent: \"\xff\xfe.png\"\nstyle: b.png\n", "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("s.yaml:2:11: not UTF-8 text (byte 0xff)"));
  spec = ParseSweep("\xc3(: 1\n", "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("s.yaml:1:1: not UTF-8 text (byte 0xc3)"));
  // UTF-8 names are fine.
  spec = ParseSweep("name: chat-été\ncontent: \u732b.png\nstyle: b.png\n", "s.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
}

TEST(SweepSpecTest, AFileNameThatIsNotUtf8CannotNameTheSweep) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\n", "dir/\xfd.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("has no 'name:', and its file name is not UTF-8"));
  spec = ParseSweep("name: fine\ncontent: a.png\nstyle: b.png\n", "dir/\xfd.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "fine");
}

TEST(SweepSpecTest, GridSizesAreCountedExactly) {
  // 10^8 points: 8 parameters of 10 values.
  std::string text = "content: a.png\nstyle: b.png\nparameters:\n";
  for (const char* key : {"style_weight", "content_weight", "tv_weight", "learning_rate", "steps", "seed",
                          "snapshot_every"}) {
    text += std::string("  ") + key + ": {values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n";
  }
  text += "  image_size: {values: [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]}\n";
  auto spec = ParseSweep(text, "big.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("big.yaml: the grid has 100000000 points, more than the limit of 100000"));
  // More than a size_t counts: 200^9 points.
  std::string huge = "content: a.png\nstyle: b.png\nparameters:\n";
  for (const char* key : {"style_weight", "content_weight", "tv_weight", "learning_rate", "style_scale", "steps",
                          "image_size", "seed", "snapshot_every"}) {
    huge += std::string("  ") + key + ": {values: [";
    // image_size from 16 px; style_scale small enough for every image_size.
    const int offset = std::string(key) == "image_size" ? 15 : 0;
    for (int i = 1; i <= 200; ++i) {
      huge += (i > 1 ? ", " : "") +
              (std::string(key) == "style_scale" ? "0." + std::to_string(100 + i) : std::to_string(i + offset));
    }
    huge += "]}\n";
  }
  spec = ParseSweep(huge, "huge.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("huge.yaml: the grid has more than 18446744073709551614 points, more than the limit"));
}

TEST(SweepSpecTest, NameDefaultsToFileStem) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\n", "dir/my-sweep.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "my-sweep");
  EXPECT_EQ(spec->GridSize(), 1u);
}

TEST(SweepSpecTest, AFileNameThatIsNotUtf8NamesNoSweep) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\n", "dir/caf\xe9.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr("caf\xe9.yaml: the sweep has no 'name:', and its file name is not UTF-8 text"));
  spec = ParseSweep("name: cafe\ncontent: a.png\nstyle: b.png\n", "dir/caf\xe9.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->ToJson()["name"], "cafe");
  // UTF-8 names, in the file or from it, are kept as they are.
  spec = ParseSweep("content: a.png\nstyle: b.png\n", "dir/caf\xc3\xa9.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "caf\xc3\xa9");
  EXPECT_NO_THROW(spec->ToJson().dump());
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

constexpr char kRandomSweep[] = R"(method: random
run_cap: 200
content: a.png
style: b.png
metric: {name: loss/style, goal: maximize}
max_concurrent: 4
parameters:
  learning_rate: {min: 0.001, max: 0.1, distribution: log_uniform_values}
  tv_weight: {min: 0, max: 10}
  steps: {min: 10, max: 20}
  image_size: {min: 32, max: 64, q: 16, distribution: q_uniform}
  preprocess: {values: [torchvision, caffe], probabilities: [0.9, 0.1]}
  loss:
    parameters:
      style_weight: {values: [0.1, 1.0]}
  style:
    parameters:
      layers: {value: [conv1_1]}
)";

TEST(SweepSpecTest, RandomSweepsDrawFromEachDistributionDeterministically) {
  auto spec = ParseSweep(kRandomSweep, "random.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->method, "random");
  EXPECT_EQ(spec->run_cap, 200);
  EXPECT_EQ(spec->max_concurrent, 4);
  EXPECT_EQ(spec->metric, "loss/style");
  EXPECT_EQ(spec->Objective({1, 2, 3, 4, std::nullopt}).value_or(0), -2);  // maximised: negated
  EXPECT_EQ(spec->RunCount(), 200u);
  auto runs = spec->Draw(7, 0, 200);
  ASSERT_TRUE(runs.ok()) << runs.status();
  int caffe = 0;
  std::set<int> sizes;
  for (const RunParams& run : *runs) {
    EXPECT_GE(run.learning_rate, 0.001);
    EXPECT_LE(run.learning_rate, 0.1);
    EXPECT_GE(run.tv_weight, 0);
    EXPECT_LE(run.tv_weight, 10);
    EXPECT_GE(run.steps, 10);
    EXPECT_LE(run.steps, 20);
    sizes.insert(run.image_size);
    caffe += run.preprocess == "caffe";
    // Nested names: loss.style_weight is style_weight; style.layers is style_layers.
    EXPECT_TRUE(run.style_weight == 0.1 || run.style_weight == 1.0);
    EXPECT_EQ(run.style_layers, std::vector<std::string>{"block1_conv1"});
  }
  EXPECT_EQ(sizes, (std::set<int>{32, 48, 64}));
  EXPECT_GT(caffe, 5);
  EXPECT_LT(caffe, 45);
  // The same seed gives the same runs; draw i does not depend on earlier ones.
  auto again = spec->Draw(7, 150, 50);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < 50; ++i) EXPECT_EQ((*again)[i].Hash(), (*runs)[150 + i].Hash());
  auto other = spec->Draw(8, 0, 1);
  EXPECT_NE((*other)[0].Hash(), (*runs)[0].Hash());
}

TEST(SweepSpecTest, BayesAndEarlyTerminationParse) {
  auto spec = ParseSweep(
      "method: bayes\nrun_cap: 30\nsearch_seed: 42\ncontent: a.png\nstyle: b.png\n"
      "early_terminate: {type: hyperband, min_iter: 10}\n"
      "parameters:\n  style_weight: {min: 1.0e-4, max: 1.0, distribution: log_uniform_values}\n"
      "  tv_weight: {values: [1, 10, 30]}\n",
      "bayes.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->early_terminate.type, "hyperband");
  EXPECT_EQ(spec->early_terminate.min_iter, 10);
  EXPECT_EQ(spec->early_terminate.eta, 3);
  EXPECT_TRUE(spec->has_search_seed);
  EXPECT_EQ(spec->search_seed, 42u);
  const auto space = spec->SearchSpace();
  ASSERT_EQ(space.size(), 4u);  // content, style, then the two parameters
  EXPECT_EQ(space[2].choices, 0);
  EXPECT_EQ(space[3].choices, 3);
  auto low = spec->Resolve({0, 0, 0.0, 2});
  ASSERT_TRUE(low.ok()) << low.status();
  EXPECT_NEAR(low->style_weight, 1e-4, 1e-12);
  EXPECT_EQ(low->tv_weight, 30);
  auto mid = spec->Resolve({0, 0, 0.5, 0});
  EXPECT_NEAR(mid->style_weight, 1e-2, 1e-9);  // the middle of a log range
  EXPECT_EQ(spec->ToJson()["early_terminate"]["type"], "hyperband");
}

TEST(SweepSpecTest, ALimitCanBeTighterThanTheDefault) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\nparameters:\n  steps: {values: [1, 2, 3]}\n", "g.yaml",
                         SweepLimits{2});
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()), HasSubstr("the grid has 3 points, more than the limit of 2"));
}

TEST(SweepSpecTest, ExampleSweepsAreValid) {
  const std::filesystem::path configs = std::filesystem::path(STYLESWEEP_SOURCE_DIR) / "configs";
  for (const char* name : {"example-grid.yaml", "example-random.yaml", "example-bayes.yaml", "demo.yaml"}) {
    auto spec = LoadSweepFile((configs / name).string());
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    for (const auto& image : spec->ImageRefs()) {
      EXPECT_TRUE(std::filesystem::exists(image.ref)) << name << ": " << image.ref;
    }
  }
  auto random = LoadSweepFile((configs / "example-random.yaml").string());
  EXPECT_EQ(random->method, "random");
  auto runs = random->Draw(random->search_seed, 0, random->run_cap);
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(runs->size(), 12u);
  auto bayes = LoadSweepFile((configs / "example-bayes.yaml").string());
  EXPECT_EQ(bayes->early_terminate.type, "hyperband");
}

// The metric: what the search optimises and early termination ranks by.

constexpr char kImages[] = "content: a.png\nstyle: b.png\n";

absl::StatusOr<SweepSpec> ParseWithMetric(const std::string& metric_and_more) {
  return ParseSweep(std::string(kImages) + metric_and_more, "metric.yaml");
}

// An evaluation whose every metric has its own value, so that picking the
// wrong one shows.
Evaluation DistinctEvaluation() {
  Evaluation e;
  e.style = 1;
  e.content = 2;
  e.tv = 3;
  e.style_norm = 0.25;
  e.content_norm = 0.75;
  e.tv_norm = 6;
  e.ssim = 0.9;
  e.color = 8;
  return e;  // score: 0.5
}

TEST(SweepMetricTest, TheDefaultIsEvalScoreMinimised) {
  auto spec = ParseSweep(kImages, "default.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->metric, "eval/score");
  EXPECT_EQ(spec->goal, "minimize");
  EXPECT_FALSE(spec->multi_objective());
  EXPECT_EQ(spec->ToJson()["metric"], (nlohmann::json{{"name", "eval/score"}, {"goal", "minimize"}}));
  EXPECT_EQ(SweepSpec().metric, "eval/score");
}

TEST(SweepMetricTest, EveryEvalMetricIsAcceptedInItsNaturalDirection) {
  for (const std::string& name : EvalMetricNames()) {
    auto spec = ParseWithMetric("metric: {name: " + name + "}\n");
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    EXPECT_EQ(spec->metric, name);
    EXPECT_EQ(spec->goal, name == "eval/ssim" ? "maximize" : "minimize") << name;
    const auto value = EvalMetricValue(DistinctEvaluation(), name);
    ASSERT_TRUE(value.has_value()) << name;
    const auto objective = spec->Objective({10, 20, 30, 40, DistinctEvaluation()});
    ASSERT_TRUE(objective.has_value()) << name;
    EXPECT_EQ(*objective, name == "eval/ssim" ? -*value : *value) << name;
  }
  for (const char* name : {"loss/total", "loss/style", "loss/content", "loss/tv"}) {
    auto spec = ParseWithMetric(std::string("metric: {name: ") + name + "}\n");
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    EXPECT_EQ(spec->goal, "minimize") << name;
  }
}

TEST(SweepMetricTest, AnExplicitGoalWins) {
  auto ssim = ParseWithMetric("metric: {name: eval/ssim, goal: minimize}\n");
  ASSERT_TRUE(ssim.ok()) << ssim.status();
  EXPECT_EQ(ssim->goal, "minimize");
  EXPECT_EQ(ssim->Objective({0, 0, 0, 0, DistinctEvaluation()}).value_or(0), 0.9);
  // The goal alone keeps the default metric.
  auto score = ParseWithMetric("metric: {goal: maximize}\n");
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->metric, "eval/score");
  EXPECT_EQ(score->Objective({0, 0, 0, 0, DistinctEvaluation()}).value_or(0), -0.5);
}

TEST(SweepMetricTest, ParetoListsEvalMetricsInFileOrder) {
  auto spec = ParseWithMetric("metric:\n  pareto: [eval/style, eval/ssim, eval/content]\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->multi_objective());
  EXPECT_EQ(spec->pareto, (std::vector<std::string>{"eval/style", "eval/ssim", "eval/content"}));
  EXPECT_EQ(spec->ToJson()["metric"], (nlohmann::json{{"pareto", {"eval/style", "eval/ssim", "eval/content"}}}));
  auto four = ParseWithMetric("metric: {pareto: [eval/style, eval/content, eval/tv, eval/color]}\n");
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(four->pareto.size(), 4u);
}

TEST(SweepMetricTest, ObjectivePointHasOneCoordinatePerObjectiveLowerBetter) {
  const SweepSpec::RunValues values{10, 20, 30, 40, DistinctEvaluation()};
  // One loss metric: its value, minimised or maximised.
  auto total = ParseWithMetric("metric: {name: loss/content}\n");
  ASSERT_TRUE(total.ok());
  EXPECT_EQ(total->ObjectivePoint(values), (std::vector<double>{30}));
  EXPECT_EQ(total->ObjectivePoint({10, 20, 30, 40, std::nullopt}), (std::vector<double>{30}));  // needs no evaluation
  auto maximised = ParseWithMetric("metric: {name: loss/tv, goal: maximize}\n");
  ASSERT_TRUE(maximised.ok());
  EXPECT_EQ(maximised->ObjectivePoint(values), (std::vector<double>{-40}));
  EXPECT_EQ(maximised->Objective(values), std::optional<double>(-40));
  // Several: each in its natural direction, in the file's order.
  auto pareto = ParseWithMetric("metric: {pareto: [eval/ssim, eval/score, eval/color]}\n");
  ASSERT_TRUE(pareto.ok());
  EXPECT_EQ(pareto->ObjectivePoint(values), (std::vector<double>{-0.9, 0.5, 8}));
  EXPECT_FALSE(pareto->Objective(values).has_value());  // no single scalar
  // An eval metric of a run not evaluated (at that step) has no value.
  auto score = ParseWithMetric("metric: {name: eval/score}\n");
  ASSERT_TRUE(score.ok());
  EXPECT_EQ(score->ObjectivePoint(values), (std::vector<double>{0.5}));
  EXPECT_FALSE(score->ObjectivePoint({10, 20, 30, 40, std::nullopt}).has_value());
  EXPECT_FALSE(score->Objective({10, 20, 30, 40, std::nullopt}).has_value());
  EXPECT_FALSE(pareto->ObjectivePoint({10, 20, 30, 40, std::nullopt}).has_value());
}

TEST(SweepMetricTest, TheObjectiveRoundTripsThroughStoredJson) {
  for (const char* metric : {"metric: {name: eval/ssim}\n", "metric: {name: eval/ssim, goal: minimize}\n",
                             "metric: {name: loss/style, goal: maximize}\n", "metric: {name: loss/total}\n",
                             "metric: {pareto: [eval/content, eval/ssim]}\n", ""}) {
    auto spec = ParseWithMetric(metric);
    ASSERT_TRUE(spec.ok()) << metric << spec.status();
    // Stored specs are read back from their text.
    const SweepSpec objective = SweepSpec::ObjectiveFromJson(nlohmann::json::parse(spec->ToJson().dump()));
    EXPECT_EQ(objective.metric, spec->metric) << metric;
    EXPECT_EQ(objective.goal, spec->goal) << metric;
    EXPECT_EQ(objective.pareto, spec->pareto) << metric;
    EXPECT_EQ(objective.ToJson()["metric"], spec->ToJson()["metric"]) << metric;
  }
}

TEST(SweepMetricTest, OlderStoredJsonKeepsTheObjectiveItHad) {
  // Sweeps stored before eval metrics: loss/total, the old default, stays.
  SweepSpec old = SweepSpec::ObjectiveFromJson(
      nlohmann::json::parse(R"({"name": "s", "metric": {"name": "loss/total", "goal": "minimize"}})"));
  EXPECT_EQ(old.metric, "loss/total");
  EXPECT_EQ(old.goal, "minimize");
  EXPECT_FALSE(old.multi_objective());
  old = SweepSpec::ObjectiveFromJson(nlohmann::json::parse(R"({"metric": {"name": "loss/style", "goal": "maximize"}})"));
  EXPECT_EQ(old.metric, "loss/style");
  EXPECT_EQ(old.goal, "maximize");
  // No goal: the metric's natural direction.
  old = SweepSpec::ObjectiveFromJson(nlohmann::json::parse(R"({"metric": {"name": "eval/ssim"}})"));
  EXPECT_EQ(old.goal, "maximize");
  // No metric at all (before metrics could be chosen), or one not known
  // here: loss/total, what such sweeps were ranked by.
  for (const char* text : {R"({"name": "s"})", R"({"metric": {"name": "loss/perceptual"}})", R"({"metric": 3})",
                           R"([])", R"({"metric": {"pareto": ["eval/style"]}})"}) {
    old = SweepSpec::ObjectiveFromJson(nlohmann::json::parse(text));
    EXPECT_EQ(old.metric, "loss/total") << text;
    EXPECT_EQ(old.goal, "minimize") << text;
    EXPECT_FALSE(old.multi_objective()) << text;
  }
}

TEST(SweepMetricTest, EvalSizeIsOneValueForTheWholeSweep) {
  for (const char* text : {"eval_size: 512\n", "parameters:\n  eval_size: {value: 512}\n",
                           "parameters:\n  eval_size: {values: [512]}\n"}) {
    auto spec = ParseWithMetric(text);
    ASSERT_TRUE(spec.ok()) << text << spec.status();
    auto runs = spec->Expand();
    ASSERT_TRUE(runs.ok()) << runs.status();
    EXPECT_EQ((*runs)[0].eval_size, 512) << text;
  }
  auto runs = ParseSweep(kImages, "default.yaml")->Expand();
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ((*runs)[0].eval_size, kDefaultEvalSize);
}

TEST(SweepMetricTest, ALossMetricOverRunsThatVaryTheirWeightsIsWarnedAbout) {
  auto spec = ParseWithMetric(
      "metric: {name: loss/total}\nparameters:\n  style_weight: {values: [0.01, 0.1]}\n"
      "  learning_rate: {values: [0.01, 0.02]}\n  image_size: {values: [256, 512]}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->Warnings(),
            std::vector<std::string>{
                "metric loss/total ranks runs by their own weighted losses, but this sweep varies style_weight and "
                "image_size: runs with a smaller style_weight score lower whatever their image. Rank by eval/score "
                "(the default) or another eval/* metric to compare the images."});
}

TEST(SweepMetricTest, WarningsListEveryVariedKeyInFileOrderOnce) {
  // Keys that change what a loss measures, not only its weight; a
  // distribution varies as much as a list.
  auto spec = ParseSweep(
      "method: random\nrun_cap: 4\ncontent: a.png\nstyle: b.png\nmetric: {name: loss/style}\nparameters:\n"
      "  optimizer: {values: [adam, lbfgs]}\n  content_layers: {values: [[block4_conv2], [block5_conv2]]}\n"
      "  tv_weight: {min: 0, max: 10}\n  steps: {values: [10, 20]}\n",
      "r.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto warnings = spec->Warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("metric loss/style ranks runs by their own weighted losses, but this sweep "
                                     "varies optimizer, content_layers and tv_weight: runs with a smaller tv_weight "
                                     "score lower whatever their image."));
  EXPECT_THAT(warnings[0], Not(HasSubstr("steps")));
  // No weight varied: the reason is the measure itself.
  spec = ParseWithMetric("metric: {name: loss/content}\nparameters:\n  style_layers: {values: [[conv1_1], [conv2_1]]}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->Warnings().size(), 1u);
  EXPECT_THAT(spec->Warnings()[0],
              HasSubstr("varies style_layers: each run's loss measures other terms at another scale"));
  // Every key that changes the losses' measure is one.
  for (const char* varied : {"style_weight: {values: [1, 2]}", "content_weight: {values: [1, 2]}",
                             "tv_weight: {values: [1, 2]}", "style_layers: {values: [[conv1_1], [conv2_1]]}",
                             "content_layers: {values: [[conv4_2], [conv5_2]]}",
                             "style_layer_weights: {values: [[1, 1, 1, 1, 1], [2, 1, 1, 1, 1]]}",
                             "image_size: {values: [64, 128]}",
                             "multires_sizes: {values: [[32, 64], [48, 64]]}\n  multires_steps: {value: [1, 1]}",
                             "multires_steps: {values: [[1, 1], [2, 2]]}\n  multires_sizes: {value: [32, 64]}",
                             "style_blend_weights: {values: [[1], [2]]}", "optimizer: {values: [adam, lbfgs]}"}) {
    spec = ParseWithMetric(std::string("metric: {name: loss/total}\nparameters:\n  ") + varied + "\n");
    ASSERT_TRUE(spec.ok()) << varied << ": " << spec.status();
    EXPECT_EQ(spec->Warnings().size(), 1u) << varied;
  }
}

TEST(SweepMetricTest, NoWarningForEvalMetricsOrFixedWeights) {
  constexpr char kVaried[] = "parameters:\n  style_weight: {values: [0.01, 0.1]}\n  image_size: {values: [64, 128]}\n";
  for (const std::string& metric : {std::string(""), std::string("metric: {name: eval/style}\n"),
                                    std::string("metric: {pareto: [eval/style, eval/content]}\n")}) {
    auto spec = ParseWithMetric(metric + kVaried);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_TRUE(spec->Warnings().empty()) << metric;
  }
  // Fixed weights, sizes and layers: the losses are measured alike.
  auto spec = ParseWithMetric(
      "metric: {name: loss/total}\nstyle_weight: 0.1\nparameters:\n  image_size: {value: 128}\n"
      "  learning_rate: {values: [0.01, 0.02]}\n  seed: {values: [1, 2]}\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->Warnings().empty());
}

TEST(SweepSpecTest, NestedGroupsMapToRunParameters) {
  auto spec = ParseSweep(
      "content: a.png\nstyle: b.png\nparameters:\n"
      "  optimizer:\n    parameters:\n      name: {value: adam}\n      learning_rate: {values: [0.1, 0.2]}\n"
      "  tv:\n    parameters:\n      weight: {value: 5}\n",
      "nested.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto runs = spec->Expand();
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].optimizer, "adam");
  EXPECT_EQ((*runs)[1].learning_rate, 0.2);
  EXPECT_EQ((*runs)[0].tv_weight, 5);
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
        BadSweep{"content: a.png\nstyle: b.png\nweights: [a.pth, b.pth]\n",
                 "bad.yaml:3:10: weights: expected a weights file path, got a list"},
        BadSweep{"content: a.png\nstyle: b.png\nwieghts: a.pth\n",
                 "bad.yaml:3:1: wieghts: unknown key (did you mean 'weights'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nimage_size: 8\n", "image_size must be from 16 to 16384 pixels, got 8"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_layers: [block9_conv1]\n",
                 "bad.yaml:3:15: style_layers: unknown VGG19 layer 'block9_conv1'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {values: [1, 1]}\n",
                 "parameters.style_weight.values[1]: duplicate value"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: 3\n",
                 "parameters.style_weight: expected a mapping with 'value' or 'values'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 1, max: 2}\n",
                 "bad.yaml:4:18: parameters.style_weight.min: grid sweeps take 'value' or 'values'; distributions "
                 "need method: random or bayes"},
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
        // JSON and protobuf strings must be UTF-8: a Latin-1 file is refused where it breaks.
        BadSweep{"name: la\x87" "ers\ncontent: a.png\nstyle: b.png\n",
                 "bad.yaml:1:9: not UTF-8 text (byte 0x87); save the sweep file as UTF-8"},
        BadSweep{"content: a.png\nstyle: b.png\n# caf\xe9\n", "bad.yaml:3:6: not UTF-8 text (byte 0xe9)"},
        BadSweep{"content: a.png\nstyle: b.png\npreprocess: keras\n", "preprocess must be 'torchvision' or 'caffe'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  steps: {values: [1,2,3,4,5,6,7,8,9,10]}\n"
                 "  seed: {values: [1,2,3,4,5,6,7,8,9,10]}\n  image_size: {values: [16,17,18,19,20,21,22,23,24,25]}\n"
                 "  tv_weight: {values: [1,2,3,4,5,6,7,8,9,10]}\n  learning_rate: {values: [1,2,3,4,5,6,7,8,9,10]}\n"
                 "  style_weight: {values: [1,2]}\n",
                 "more than the limit of 100000"},
        // The search language.
        BadSweep{"content: a.png\nstyle: b.png\nmethod: random\n",
                 "bad.yaml:3:9: method: method: random needs run_cap"},
        BadSweep{"content: a.png\nstyle: b.png\nmethod: bayes\n", "method: method: bayes needs run_cap"},
        BadSweep{"content: a.png\nstyle: b.png\nmethod: [grid]\n", "bad.yaml:3:9: method: expected a string"},
        BadSweep{"content: a.png\nstyle: b.png\nrun_cap: 0\n", "bad.yaml:3:10: run_cap: expected a positive integer"},
        BadSweep{"content: a.png\nstyle: b.png\nrun_cap: many\n", "run_cap: expected a positive integer, got 'many'"},
        BadSweep{"content: a.png\nstyle: b.png\nrun_cap: 1000000\n", "run_cap 1000000 is more than the limit of 100000"},
        BadSweep{"content: a.png\nstyle: b.png\nrun_cap: 2\nparameters:\n  steps: {values: [1, 2, 3]}\n",
                 "bad.yaml:3:10: run_cap: the grid has 3 points, more than run_cap 2"},
        BadSweep{"content: a.png\nstyle: b.png\nmax_concurrent: 0\n", "max_concurrent: expected a positive integer"},
        BadSweep{"content: a.png\nstyle: b.png\nsearch_seed: -1\n", "search_seed: expected an integer >= 0"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: loss/total\n", "bad.yaml:3:9: metric: expected a mapping"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {name: loss/styel}\n",
                 "bad.yaml:3:16: metric.name: unknown metric 'loss/styel'; expected one of eval/score, eval/style, "
                 "eval/content, eval/tv, eval/style_norm, eval/content_norm, eval/tv_norm, eval/ssim, eval/color, "
                 "loss/total, loss/style, loss/content, loss/tv (did you mean 'loss/style'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {name: eval/scor}\n",
                 "bad.yaml:3:16: metric.name: unknown metric 'eval/scor'; expected one of eval/score"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {name: eval/scor}\n", "(did you mean 'eval/score'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {name: eval/sim}\n", "(did you mean 'eval/ssim'?)"},
        // Pareto fronts.
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: [eval/style]}\n",
                 "bad.yaml:3:18: metric.pareto: lists 1 metric; a Pareto front ranks by 2 to 4 (for one metric, "
                 "write {name: eval/style})"},
        BadSweep{"content: a.png\nstyle: b.png\n"
                 "metric: {pareto: [eval/style, eval/content, eval/tv, eval/ssim, eval/color]}\n",
                 "bad.yaml:3:18: metric.pareto: lists 5 metrics; a Pareto front ranks by 2 to 4"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: []}\n", "metric.pareto: lists 0 metrics"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: [eval/style, eval/style]}\n",
                 "bad.yaml:3:31: metric.pareto[1]: eval/style is listed twice"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: [eval/style, loss/content]}\n",
                 "bad.yaml:3:31: metric.pareto[1]: loss/content cannot be a pareto metric: loss/* values are "
                 "weighted by each run's own weights, so they are not comparable across runs; use eval/* metrics"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: [eval/style, eval/contnet]}\n",
                 "metric.pareto[1]: unknown metric 'eval/contnet'; expected one of eval/score, eval/style, "
                 "eval/content, eval/tv, eval/style_norm, eval/content_norm, eval/tv_norm, eval/ssim, eval/color "
                 "(did you mean 'eval/content'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric:\n  name: eval/score\n  pareto: [eval/style, eval/content]\n",
                 "bad.yaml:4:3: metric.name: cannot be combined with 'pareto'"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric:\n  pareto: [eval/style, eval/content]\n  goal: maximize\n",
                 "bad.yaml:5:3: metric.goal: cannot be combined with 'pareto': each pareto metric is ranked in its "
                 "natural direction"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: eval/style}\n",
                 "bad.yaml:3:18: metric.pareto: expected a list of 2 to 4 eval/* metrics, got 'eval/style'"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {pareto: {a: eval/style}}\n",
                 "metric.pareto: expected a list of 2 to 4 eval/* metrics, got a mapping"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {paretto: [eval/style, eval/tv]}\n",
                 "bad.yaml:3:10: metric.paretto: unknown key (did you mean 'pareto'?)"},
        // eval_size: one evaluation size per sweep.
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  eval_size: {values: [128, 256]}\n",
                 "bad.yaml:4:23: parameters.eval_size.values: eval_size must be one value for the whole sweep: runs "
                 "are compared at one evaluation size"},
        BadSweep{"content: a.png\nstyle: b.png\neval_size: [128, 256]\n",
                 "bad.yaml:3:12: eval_size: eval_size must be one value for the whole sweep"},
        BadSweep{"method: random\nrun_cap: 3\ncontent: a.png\nstyle: b.png\nparameters:\n"
                 "  eval_size: {min: 128, max: 256}\n",
                 "bad.yaml:6:3: parameters.eval_size: eval_size must be one value for the whole sweep"},
        BadSweep{"content: a.png\nstyle: b.png\neval_size: 16\n", "eval_size must be from 32 to 4096 pixels, got 16"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {name: loss/tv, goal: lower}\n",
                 "metric.goal: expected minimize or maximize, got 'lower'"},
        BadSweep{"content: a.png\nstyle: b.png\nmetric: {nmae: loss/tv}\n",
                 "bad.yaml:3:10: metric.nmae: unknown key (did you mean 'name'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: asha, min_iter: 3}\n",
                 "early_terminate.type: expected hyperband or median, got 'asha'"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: hyperband}\n",
                 "early_terminate: expected 'min_iter'"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {min_iter: 3}\n", "early_terminate: expected 'type'"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: hyperband, min_iter: 0}\n",
                 "early_terminate.min_iter: expected a positive number of steps"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: hyperband, min_iter: 3, eta: 1}\n",
                 "early_terminate.eta: expected an integer from 2 to 100, got '1'"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: median, min_iter: 3, etta: 2}\n",
                 "early_terminate.etta: unknown key (did you mean 'eta'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: hyperband\n", "early_terminate: expected a mapping"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 2, max: 1}\n",
                 "bad.yaml:6:23: parameters.style_weight.min: min (2) is greater than max (1)"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 1}\n",
                 "parameters.style_weight: expected both 'min' and 'max'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 1, max: lots}\n",
                 "parameters.style_weight.max: expected a number, got 'lots'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 1, max: 2.5}\n",
                 "parameters.steps.max: expected an integer, got '2.5'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 0, max: 10}\n", "parameters.steps.min: steps must be positive"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  image_size: {min: 8, max: 64}\n",
                 "parameters.image_size.min: image_size must be from 16 to 16384 pixels"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  learning_rate: {min: 0, max: 1, distribution: log_uniform_values}\n",
                 "parameters.learning_rate.min: learning_rate must be"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, distribution: log_uniform_values}\n",
                 "parameters.tv_weight.min: log_uniform_values needs min > 0"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, distribution: log_uniform}\n",
                 "parameters.tv_weight.distribution: unknown distribution 'log_uniform'; expected uniform, int_uniform, "
                 "log_uniform_values, q_uniform, categorical (did you mean 'log_uniform_values'?)"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 1, max: 9, distribution: uniform}\n",
                 "parameters.steps.distribution: steps is an integer: use int_uniform or q_uniform"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, q: 0.1}\n",
                 "parameters.tv_weight.q: q goes with distribution: q_uniform"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, q: -1, distribution: q_uniform}\n",
                 "parameters.tv_weight.q: expected a positive number, got '-1'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 1, max: 9, q: 0.5, distribution: q_uniform}\n",
                 "parameters.steps.q: expected a positive integer"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, values: [1]}\n",
                 "parameters.tv_weight: has both a distribution (min/max) and 'value'/'values'; use one"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_layers: {min: 0, max: 1}\n",
                 "parameters.style_layers: style_layers takes a list of layer names: list the choices with 'values'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_layers: {values: [[block1_conv1], [relu9_1]]}\n",
                 "parameters.style_layers.values[1]: unknown VGG19 layer 'relu9_1'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: [0.5, 0.4]}\n",
                 "bad.yaml:6:46: parameters.tv_weight.probabilities: probabilities sum to 0.9, not 1"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: [1]}\n",
                 "parameters.tv_weight.probabilities: has 1 probabilities for 2 values"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: [1.5, -0.5]}\n",
                 "parameters.tv_weight.probabilities[0]: expected a probability from 0 to 1, got '1.5'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: 0.5}\n",
                 "parameters.tv_weight.probabilities: expected a list of numbers"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, probabilities: [1]}\n",
                 "parameters.tv_weight.probabilities: probabilities go with 'values'"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: [0.5, 0.5]}\n",
                 "parameters.tv_weight.probabilities: grid sweeps take 'value' or 'values'"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {mu: 0, sigma: 1}\n",
                 "parameters.tv_weight.mu: normal distributions are not supported"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {distrib: uniform}\n",
                 "parameters.tv_weight.distrib: unknown key (did you mean 'distribution'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters: {}\n", "parameters: must name at least one parameter"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  optimizer:\n    parameters:\n      learning_rat: {value: 1}\n",
                 "bad.yaml:6:7: parameters.optimizer.parameters.learning_rat: unknown key (did you mean 'learning_rate'?)"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  loss:\n    parameters: {style_weight: {value: 1}}\n"
                 "    extra: 1\n",
                 "parameters.loss.extra: a group of options takes only 'parameters'"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_weight: 1\nparameters:\n  style:\n    parameters:\n"
                 "      weight: {value: 2}\n",
                 "parameters.style.parameters.weight: is set twice"}));

// The engine computes in float32: a real it cannot hold is refused where it
// is written, never rounded to infinity or to 0 on the way.
INSTANTIATE_TEST_SUITE_P(
    Float32, MalformedSweepTest,
    ::testing::Values(
        BadSweep{"content: a.png\nstyle: b.png\nstyle_weight: 1e300\n",
                 "bad.yaml:3:15: style_weight: style_weight must be at most 3.40282e+38 in magnitude (the float32 "
                 "range), got 1e+300"},
        BadSweep{"content: a.png\nstyle: b.png\ncontent_weight: .inf\n",
                 "bad.yaml:3:17: content_weight: content_weight must be a finite number, got inf"},
        BadSweep{"content: a.png\nstyle: b.png\ntv_weight: .nan\n",
                 "bad.yaml:3:12: tv_weight: tv_weight must be a finite number, got nan"},
        BadSweep{"content: a.png\nstyle: b.png\nlearning_rate: 1e-50\n",
                 "bad.yaml:3:16: learning_rate: learning_rate must be 0 or at least 1.4013e-45 in magnitude (float32 "
                 "would round it to 0), got 1e-50"},
        // Beyond even a double: yaml-cpp refuses the first and reads the second as 0.
        BadSweep{"content: a.png\nstyle: b.png\nlearning_rate: 1e400\n",
                 "bad.yaml:3:16: learning_rate: learning_rate must be 0 or a magnitude from 1.4013e-45 to "
                 "3.40282e+38 (the float32 range), got 1e400"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_weight: 1e-400\n",
                 "bad.yaml:3:15: style_weight: style_weight must be 0 or a magnitude from"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_scale: 3.5e38\n",
                 "bad.yaml:3:14: style_scale: style_scale must be at most"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  style_weight: {values: [1, -.inf]}\n",
                 "bad.yaml:4:30: parameters.style_weight.values[1]: style_weight must be a finite number, got -inf"},
        BadSweep{"content: a.png\nstyle: [b.png, c.png]\nparameters:\n  style_blend_weights: {value: [1, 1e39]}\n",
                 "bad.yaml:4:36: parameters.style_blend_weights.value[1]: style_blend_weights must be at most"},
        BadSweep{"content: a.png\nstyle: b.png\nstyle_layers: [conv1_1]\nstyle_layer_weights: [1e-46]\n",
                 "bad.yaml:4:23: style_layer_weights[0]: style_layer_weights must be 0 or at least"},
        // Distributions: bounds float32 holds give draws it holds.
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: 0, max: 1e39}\n",
                 "bad.yaml:6:31: parameters.style_weight.max: style_weight must be at most"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  style_weight: {min: .nan, max: 1}\n",
                 "bad.yaml:6:23: parameters.style_weight.min: style_weight must be a finite number, got nan"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  learning_rate: {min: 1e-50, max: 1, distribution: log_uniform_values}\n",
                 "bad.yaml:6:24: parameters.learning_rate.min: learning_rate must be 0 or at least"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {min: 0, max: 1, q: .inf, distribution: q_uniform}\n",
                 "bad.yaml:6:34: parameters.tv_weight.q: q must be a finite number, got inf"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 5, max: 7, q: 10, distribution: q_uniform}\n",
                 "bad.yaml:6:30: parameters.steps.q: no multiple of q (10) lies between min (5) and max (7)"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  tv_weight: {values: [1, 2], probabilities: [.nan, 1]}\n",
                 "bad.yaml:6:47: parameters.tv_weight.probabilities[0]: expected a probability from 0 to 1, got '.nan'"},
        // Integers outside their field's type are refused, not wrapped.
        BadSweep{"content: a.png\nstyle: b.png\nsteps: 4294967297\n",
                 "bad.yaml:3:8: steps: steps must be an integer from -2147483648 to 2147483647, got 4294967297"},
        BadSweep{"content: a.png\nstyle: b.png\nseed: -1\n",
                 "bad.yaml:3:7: seed: seed must be an integer from 0 to 18446744073709551615, got -1"},
        BadSweep{"content: a.png\nstyle: b.png\nseed: 99999999999999999999\n",
                 "bad.yaml:3:7: seed: seed must be an integer in range, got 99999999999999999999"},
        BadSweep{"content: a.png\nstyle: b.png\nsnapshot_every: 2147483648\n",
                 "bad.yaml:3:17: snapshot_every: snapshot_every must be an integer from"},
        BadSweep{"content: a.png\nstyle: b.png\nparameters:\n  image_size: {values: [512, 4294967808]}\n",
                 "bad.yaml:4:30: parameters.image_size.values[1]: image_size must be an integer from"},
        BadSweep{"content: a.png\nstyle: b.png\nmultires_sizes: [64, 4294967312]\nmultires_steps: [1, 1]\n",
                 "bad.yaml:3:17: multires_sizes: multires_sizes must be an integer from"},
        BadSweep{"content: a.png\nstyle: b.png\nmultires_sizes: [64, 128]\nmultires_steps: [2000000000, 2000000000]\n",
                 "multires_steps add up to 4000000000 steps, more than 2147483647"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  steps: {min: 1, max: 4294967297}\n",
                 "bad.yaml:6:24: parameters.steps.max: steps must be an integer from"},
        BadSweep{"method: random\nrun_cap: 5\ncontent: a.png\nstyle: b.png\nparameters:\n  seed: {min: -1, max: 10}\n", "bad.yaml:6:15: parameters.seed.min: seed must be an integer from 0"},
        BadSweep{"content: a.png\nstyle: b.png\nearly_terminate: {type: hyperband, min_iter: 4294967297}\n",
                 "bad.yaml:3:46: early_terminate.min_iter: expected a positive number of steps up to 2147483647"}));

// The largest representable values and the smallest nonzero ones are kept.
TEST(SweepSpecTest, Float32ExtremesAreAccepted) {
  auto spec = ParseSweep("content: a.png\nstyle: b.png\nstyle_weight: 3.4028234663852886e38\n"
                         "content_weight: 1.401298464324817e-45\ntv_weight: 0\nseed: 9223372036854775807\n"
                         "steps: 2147483647\n",
                         "edge.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto runs = spec->Expand();
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ((*runs)[0].style_weight, 3.4028234663852886e38);
  EXPECT_EQ((*runs)[0].content_weight, 1.401298464324817e-45);
  EXPECT_EQ((*runs)[0].seed, 9223372036854775807u);
  EXPECT_EQ((*runs)[0].steps, 2147483647);
}

// Run parameters arrive as JSON too (stored runs, the wire): the same rules hold.
TEST(RunParamsTest, FromJsonRefusesWhatWouldWrapOrOverflow) {
  const nlohmann::json base = {{"content", "a"}, {"style", "b"}};
  auto with = [&](const char* key, nlohmann::json value) {
    nlohmann::json j = base;
    j[key] = std::move(value);
    auto run = RunParams::FromJson(j);
    return run.ok() ? std::string("accepted") : std::string(run.status().message());
  };
  EXPECT_THAT(with("steps", 4294967297LL), HasSubstr("steps must be an integer from"));
  EXPECT_THAT(with("seed", -1), HasSubstr("seed must be an integer from 0"));
  EXPECT_THAT(with("steps", 2.5), HasSubstr("steps must be an integer, got 2.5"));
  EXPECT_THAT(with("steps", "ten"), HasSubstr("steps must be an integer"));
  EXPECT_THAT(with("seed", 1.8446744073709552e19), HasSubstr("seed must be an integer from 0"));
  EXPECT_THAT(with("style_weight", std::numeric_limits<double>::infinity()),
              HasSubstr("style_weight must be a finite number"));
  EXPECT_THAT(with("learning_rate", 1e300), HasSubstr("learning_rate must be at most"));
  EXPECT_EQ(with("steps", 7.0), "accepted");
  EXPECT_EQ(with("seed", 18446744073709551615ULL), "accepted");
}

TEST(SweepSpecTest, RepresentableAsFloat32) {
  EXPECT_TRUE(RepresentableAsFloat32(0));
  EXPECT_TRUE(RepresentableAsFloat32(-0.0));
  EXPECT_TRUE(RepresentableAsFloat32(3.4028234663852886e38));
  EXPECT_TRUE(RepresentableAsFloat32(-1.401298464324817e-45));
  EXPECT_FALSE(RepresentableAsFloat32(3.4028236e38));
  EXPECT_FALSE(RepresentableAsFloat32(1.4e-45));
  EXPECT_FALSE(RepresentableAsFloat32(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(RepresentableAsFloat32(-std::numeric_limits<double>::infinity()));
}

std::string Padded(size_t bytes) {
  std::string text = "content: a.png\nstyle: b.png\n# ";
  text.append(bytes - text.size() - 1, 'x');
  text += "\n";
  return text;
}

TEST(SweepSpecTest, AcceptsASweepFileOfExactlyTheLimit) {
  const std::string text = Padded(kMaxSweepYamlBytes);
  ASSERT_EQ(text.size(), 1048576u);
  auto spec = ParseSweep(text, "big.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status();
}

TEST(SweepSpecTest, RefusesALargerSweepFileBeforeParsingIt) {
  auto spec = ParseSweep(Padded(kMaxSweepYamlBytes + 1), "big.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status()));
  EXPECT_EQ(spec.status().message(), "big.yaml is 1048577 bytes; a sweep file may be at most 1 MiB (1048576 bytes)");
  // Not valid YAML either: the size is all that was looked at.
  auto broken = ParseSweep(std::string(60 * kMiB, '['), "sweep.yaml");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message(),
            "sweep.yaml is 62914560 bytes; a sweep file may be at most 1 MiB (1048576 bytes)");
}

TEST(SweepSpecTest, LoadRefusesALargeFileFromItsSize) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "stylesweep_large_sweep.yaml";
  std::ofstream(path) << "content: a.png\nstyle: b.png\n";
  std::filesystem::resize_file(path, 60 * kMiB);  // sparse: nothing written
  auto spec = LoadSweepFile(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(std::string(spec.status().message()),
              HasSubstr(path.string() + " is 62914560 bytes; a sweep file may be at most 1 MiB (1048576 bytes)"));
}

}  // namespace
}  // namespace stylesweep

namespace stylesweep {
namespace {

// The JSON Schema documents every run parameter, both at the top level of a
// sweep and among the parameters, and nothing the parser does not know.
TEST(SweepSchemaTest, DocumentsEveryRunParameter) {
  std::ifstream in(std::filesystem::path(STYLESWEEP_SOURCE_DIR) / "schemas" / "sweep.schema.json");
  ASSERT_TRUE(in) << "schemas/sweep.schema.json is missing";
  const nlohmann::json schema = nlohmann::json::parse(in);
  const nlohmann::json& documented = schema["$defs"]["run_parameters"]["properties"];
  std::set<std::string> known;
  for (const ParamDef& def : RunParamDefs()) {
    known.insert(def.name);
    EXPECT_TRUE(documented.contains(def.name)) << def.name << " is not in $defs.run_parameters";
    EXPECT_TRUE(schema["properties"].contains(def.name)) << def.name << " is not allowed at the top level";
  }
  for (const auto& [name, unused] : documented.items()) {
    EXPECT_TRUE(known.count(name)) << name << " is documented but not a run parameter";
  }
}

// The schema offers exactly the metrics the parser accepts.
TEST(SweepSchemaTest, DocumentsEveryMetric) {
  std::ifstream in(std::filesystem::path(STYLESWEEP_SOURCE_DIR) / "schemas" / "sweep.schema.json");
  ASSERT_TRUE(in) << "schemas/sweep.schema.json is missing";
  const nlohmann::json metric = nlohmann::json::parse(in)["properties"]["metric"];
  std::vector<std::string> names = EvalMetricNames();
  EXPECT_EQ(metric["properties"]["pareto"]["items"]["enum"], nlohmann::json(names));
  for (const char* loss : {"loss/total", "loss/style", "loss/content", "loss/tv"}) names.emplace_back(loss);
  EXPECT_EQ(metric["properties"]["name"]["enum"], nlohmann::json(names));
  EXPECT_EQ(metric["properties"]["name"]["default"], SweepSpec().metric);
}

// Every real the schema describes is bounded by float32's range, as the
// parser checks it, so editors flag 1e300 too.
TEST(SweepSchemaTest, BoundsEveryRealByFloat32) {
  std::ifstream in(std::filesystem::path(STYLESWEEP_SOURCE_DIR) / "schemas" / "sweep.schema.json");
  ASSERT_TRUE(in) << "schemas/sweep.schema.json is missing";
  const nlohmann::json schema = nlohmann::json::parse(in);
  int reals = 0;
  std::function<void(const nlohmann::json&, const std::string&)> visit = [&](const nlohmann::json& node,
                                                                             const std::string& where) {
    if (node.is_object() && node.contains("type") && node["type"] == "number") {
      ++reals;
      EXPECT_TRUE(node.contains("maximum") && node["maximum"].get<double>() <= FLT_MAX)
          << where << " has no maximum within float32's range";
    }
    if (node.is_structured()) {
      for (const auto& [key, child] : node.items()) visit(child, where + "/" + key);
    }
  };
  visit(schema, "");
  EXPECT_GE(reals, 10);
}

}  // namespace
}  // namespace stylesweep
