#include "tools/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/evaluation.h"
#include "tests/tools/report_fixture.h"
#include "tools/sweep_source.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class CompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("stylesweep-compare-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(testing::WriteFixtureDatabase((dir_ / "f.db").string(), (dir_ / "artifacts").string(), true).ok());
    SourceOptions options;
    options.db = (dir_ / "f.db").string();
    auto source = OpenSweepSource(options);
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = *std::move(source);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::unique_ptr<SweepSource> source_;
};

TEST_F(CompareTest, ShowsOnlyTheParametersThatDifferAndTheLossRatio) {
  auto comparison = LoadComparison(*source_, "fixture#2", "fixture#0");
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  EXPECT_EQ(DifferingParameters(*comparison), std::vector<std::string>{"style_weight"});
  auto text = RenderComparison(*comparison, {});
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, HasSubstr("run 3 (sweep 1 'fixture' #2) vs run 1 (sweep 1 'fixture' #0)"));
  EXPECT_THAT(*text, Not(HasSubstr("learning_rate")));  // the same in both
  // #0's total loss is 4000/5 = 800, #2's 1500/5 = 300: 2.667 times.
  EXPECT_THAT(*text, ::testing::ContainsRegex("loss/total +300 +800 +2.667x"));
  EXPECT_THAT(*text, HasSubstr((dir_ / "artifacts/1-fixture/run-2/attempt-1/final.png").string()));
}

TEST_F(CompareTest, HtmlPutsBothImagesSideBySideInOneFile) {
  auto comparison = LoadComparison(*source_, "fixture#2", "fixture#4");
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  CompareOptions options;
  options.format = "html";
  auto html = RenderComparison(*comparison, options);
  ASSERT_TRUE(html.ok());
  size_t images = 0;
  for (size_t p = html->find("<img"); p != std::string::npos; p = html->find("<img", p + 1)) ++images;
  EXPECT_EQ(images, 2u);
  EXPECT_THAT(*html, HasSubstr("src=\"data:image/png;base64,"));
  EXPECT_THAT(*html, Not(HasSubstr("class=\"missing")));
  EXPECT_THAT(*html, HasSubstr("<polyline class=\"curve best\""));
}

// The fixture's evaluations (report_fixture.h) on both runs.
absl::StatusOr<Comparison> Evaluated(absl::StatusOr<Comparison> comparison) {
  if (comparison.ok()) {
    EXPECT_TRUE(testing::HasFixtureEvaluation(comparison->a.run));
    EXPECT_TRUE(testing::HasFixtureEvaluation(comparison->b.run));
  }
  return comparison;
}

TEST_F(CompareTest, EveryEvaluationMetricIsARowWithTheBetterRunByItsDirection) {
  // #2 has the lower loss, #1 the lower eval/score (0.4 against 0.31).
  auto comparison = Evaluated(LoadComparison(*source_, "fixture#2", "fixture#1"));
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  auto text = RenderComparison(*comparison, {});
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, ::testing::ContainsRegex("  ratio +better\n"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/score +0.4 +0.31 +#1\n"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/style +0.3 +0.4 +#2\n"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/content +0.3 +0.12 +#1\n"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/ssim +0.6 +0.75 +#1\n"));  // higher is better
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/color +0.1 +0.15 +#2\n"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval_step +4 +4 *\n"));
  size_t rows = 0;
  for (const std::string& name : EvalMetricNames()) rows += text->find("\n" + name + " ") != std::string::npos;
  EXPECT_EQ(rows, EvalMetricNames().size());
  EXPECT_THAT(*text, ::testing::ContainsRegex("loss/total +300 +600 +2x"));  // still shown

  CompareOptions options;
  options.format = "json";
  const nlohmann::json json = nlohmann::json::parse(*RenderComparison(*comparison, options));
  EXPECT_EQ(json["eval_better"]["score"], 1);
  EXPECT_EQ(json["eval_better"]["style"], 0);
  EXPECT_EQ(json["eval_better"]["ssim"], 1);
  EXPECT_DOUBLE_EQ(json["runs"][1]["eval"]["score"].get<double>(), 0.31);
  EXPECT_EQ(json["runs"][1]["eval_step"], 4);

  // The page draws the better by eval/score in red: #1 (run 2), not #2.
  options.format = "html";
  auto html = RenderComparison(*comparison, options);
  ASSERT_TRUE(html.ok());
  EXPECT_THAT(*html, ::testing::ContainsRegex("<polyline class=\"curve best\"[^>]*><title>run 2 "));
  EXPECT_THAT(*html, HasSubstr("the better by eval/score in red"));
  EXPECT_THAT(*html, HasSubstr("<th>eval/score</th><td>0.4</td><td>0.31</td><td></td><td>#1</td>"));
}

TEST_F(CompareTest, ADivergedRunIsNeverTheBetterAndARunWithoutAnEvaluationDecidesNothing) {
  // #5 diverged with better values on every metric.
  auto comparison = Evaluated(LoadComparison(*source_, "fixture#5", "fixture#2"));
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  auto text = RenderComparison(*comparison, {});
  ASSERT_TRUE(text.ok());
  for (const std::string& name : EvalMetricNames()) {
    EXPECT_THAT(*text, ::testing::ContainsRegex("\n" + name + " +[0-9.]+ +[0-9.]+ +#2\n")) << name;
  }
  // #3 has no evaluation.
  comparison = Evaluated(LoadComparison(*source_, "fixture#3", "fixture#2"));
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  text = RenderComparison(*comparison, {});
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, ::testing::ContainsRegex("\neval/score +- +0.4 +-\n"));
  CompareOptions options;
  options.format = "json";
  EXPECT_TRUE(nlohmann::json::parse(*RenderComparison(*comparison, options))["eval_better"].is_null());
  // Neither evaluated (#6 is queued, #7 never evaluated): no evaluation
  // rows, no better column.
  comparison = LoadComparison(*source_, "fixture#6", "fixture#7");
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  text = RenderComparison(*comparison, {});
  EXPECT_THAT(*text, Not(HasSubstr("eval/")));
  EXPECT_THAT(*text, Not(HasSubstr("better")));
}

TEST_F(CompareTest, UnknownOrMalformedRunsAreClearErrors) {
  auto missing = LoadComparison(*source_, "fixture#0", "99");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("no run with id 99"));

  auto out_of_range = LoadComparison(*source_, "fixture#0", "fixture#8");
  EXPECT_TRUE(absl::IsNotFound(out_of_range.status()));
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("sweep 1 'fixture' has no run #8 (its runs are #0 to #7)"));

  auto no_sweep = LoadComparison(*source_, "nope#1", "1");
  EXPECT_TRUE(absl::IsNotFound(no_sweep.status()));
  EXPECT_THAT(no_sweep.status().message(), HasSubstr("nope"));

  auto malformed = LoadComparison(*source_, "best", "1");
  EXPECT_TRUE(absl::IsInvalidArgument(malformed.status()));
  EXPECT_THAT(malformed.status().message(), HasSubstr("run 'best': expected a run id"));

  auto comparison = LoadComparison(*source_, "1", "2");
  ASSERT_TRUE(comparison.ok());
  CompareOptions options;
  options.format = "csv";
  auto text = RenderComparison(*comparison, options);
  EXPECT_TRUE(absl::IsInvalidArgument(text.status()));
  EXPECT_THAT(text.status().message(), HasSubstr("--format: unknown format 'csv'; use table, json, markdown or html"));
}

TEST_F(CompareTest, ARunWithoutLossesHasNoRatio) {
  auto comparison = LoadComparison(*source_, "fixture#0", "fixture#6");  // #6 is queued
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  CompareOptions options;
  options.format = "json";
  auto text = RenderComparison(*comparison, options);
  ASSERT_TRUE(text.ok());
  const nlohmann::json json = nlohmann::json::parse(*text);
  EXPECT_TRUE(json["loss_ratio"].is_null());
  EXPECT_TRUE(json["runs"][1]["loss"].is_null());
  EXPECT_EQ(json["runs"][1]["state"], "QUEUED");
}

TEST_F(CompareTest, ADivergedRunHasNoRatioAndIsNeverTheLower) {
  // #5's last finite total loss (500/3) is below #2's (300), but it diverged.
  auto comparison = LoadComparison(*source_, "fixture#2", "fixture#5");
  ASSERT_TRUE(comparison.ok()) << comparison.status();
  auto text = RenderComparison(*comparison, {});
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, ::testing::ContainsRegex("state +SUCCEEDED +FAILED, diverged at step 3"));
  EXPECT_THAT(*text, ::testing::ContainsRegex("loss/total +300 +166.7 +- *\n"));
  EXPECT_THAT(*text, HasSubstr("#5 diverged at step 3: its losses and image are its last finite ones"));

  CompareOptions options;
  options.format = "json";
  const nlohmann::json json = nlohmann::json::parse(*RenderComparison(*comparison, options));
  EXPECT_TRUE(json["loss_ratio"].is_null());
  EXPECT_EQ(json["runs"][1]["diverged"], true);
  EXPECT_EQ(json["runs"][1]["diverged_step"], 3);
  EXPECT_EQ(json["runs"][1]["step"], 2);
  EXPECT_THAT(json["runs"][1]["image"].get<std::string>(), HasSubstr("run-5/attempt-1/step-000002.png"));

  // In the HTML page the run that did not diverge is the one in red, in
  // either order.
  options.format = "html";
  for (const auto& [first, second] : {std::pair{"fixture#2", "fixture#5"}, std::pair{"fixture#5", "fixture#2"}}) {
    auto pair = LoadComparison(*source_, first, second);
    ASSERT_TRUE(pair.ok()) << pair.status();
    auto html = RenderComparison(*pair, options);
    ASSERT_TRUE(html.ok());
    EXPECT_THAT(*html, ::testing::ContainsRegex("<polyline class=\"curve best\"[^>]*><title>run 3 "));
    EXPECT_THAT(*html, ::testing::ContainsRegex("<polyline class=\"curve\"[^>]*><title>run 6 "));
    EXPECT_THAT(*html, HasSubstr("<span class=\"badge diverged\">diverged at step 3</span>"));
  }
}

}  // namespace
}  // namespace stylesweep
