#include "tools/run_query.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/evaluation.h"
#include "tools/report.h"

namespace stylesweep {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<RunRow> Rows() {
  std::vector<RunRecord> runs;
  const double weights[] = {0.01, 0.1, 1.0, 10.0};
  for (int i = 0; i < 4; ++i) {
    RunRecord r;
    r.id = i + 1;
    r.index = i;
    r.state = i == 3 ? RunState::kFailed : RunState::kSucceeded;
    r.agent = i % 2 == 0 ? "gpu-0" : "gpu-1";
    r.params_json = nlohmann::json{{"style_weight", weights[i]},
                                   {"style_layers", i < 2 ? std::vector<std::string>{"block1_conv1"}
                                                          : std::vector<std::string>{"block1_conv1", "block2_conv1"}},
                                   {"content", "sha256:aa"}}
                        .dump();
    if (r.state == RunState::kSucceeded) {
      r.last_step = 100;
      r.total_loss = 100 - 10 * i;
    }
    r.started_ms = 1000;
    r.finished_ms = 1000 + 500 * (i + 1);
    runs.push_back(r);
  }
  return MakeRunRows(runs, nlohmann::json{{"sha256:aa", "images/cat.png"}});
}

std::vector<int> Indexes(const std::vector<RunRow>& rows, const RunFilter& filter) {
  std::vector<int> out;
  for (const RunRow& row : rows) {
    if (filter.Matches(row)) out.push_back(row.run.index);
  }
  return out;
}

TEST(RunQueryTest, FieldsResolveImageNamesAndLosses) {
  auto rows = Rows();
  EXPECT_EQ(rows[0].Field("content"), "images/cat.png");
  EXPECT_EQ(rows[0].Field("loss/total"), 100.0);
  EXPECT_TRUE(rows[3].Field("loss/total").is_null());  // never reported
  EXPECT_EQ(rows[1].Field("duration"), 1.0);
  EXPECT_EQ(rows[1].Field("state"), "SUCCEEDED");
}

TEST(RunQueryTest, WhereFiltersWithPrecedenceAndParentheses) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  auto f = RunFilter::Parse("style_weight >= 0.1 and state = SUCCEEDED", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(1, 2));
  f = RunFilter::Parse("agent = 'gpu-0' or style_weight < 0.05 and state = FAILED", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(0, 2));  // and binds tighter than or
  f = RunFilter::Parse("not (agent = gpu-0 or loss/total > 85)", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(3));
  f = RunFilter::Parse("style_layers = block2_conv1", fields);  // lists match by element
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(2, 3));
  f = RunFilter::Parse("loss/total > 0", fields);  // a run without losses never matches
  ASSERT_TRUE(f.ok());
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(0, 1, 2));
}

TEST(RunQueryTest, BadExpressionsSayWhatIsWrong) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  struct Case {
    const char* expression;
    const char* message;
  } cases[] = {
      {"stlye_weight > 1", "unknown field 'stlye_weight' (did you mean 'style_weight'?)"},
      {"style_weight 1", "at column 14 of \"style_weight 1\": expected =, !=, <, <=, > or >= after 'style_weight'"},
      {"style_weight >", "expected a value after 'style_weight >'"},
      {"(state = FAILED", "expected ')'"},
      {"state = 'FAILED", "unterminated string"},
      {"state = FAILED extra", "unexpected 'extra'"},
  };
  for (const Case& c : cases) {
    auto f = RunFilter::Parse(c.expression, fields);
    ASSERT_FALSE(f.ok()) << c.expression;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr(c.message)) << c.expression;
  }
}

TEST(RunQueryTest, WhereRefusesDeepNestingWithoutCrashing) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  const std::string comparison = "state = FAILED";
  const std::string deep_parens = std::string(15000, '(') + comparison + std::string(15000, ')');
  std::string deep_nots;
  for (int i = 0; i < 32000; ++i) deep_nots += "not ";
  deep_nots += comparison;
  for (const std::string& expression : {deep_parens, deep_nots, std::string(15000, '('), deep_nots.substr(0, 4 * 32000)}) {
    auto f = RunFilter::Parse(expression, fields);
    ASSERT_FALSE(f.ok());
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("--where: expression nested deeper than 200 levels"));
  }
  // The message points at the level that is one too deep, not at the whole text.
  auto f = RunFilter::Parse(deep_parens, fields);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("(at column 201)"));
  EXPECT_LT(f.status().message().size(), 200u);
}

TEST(RunQueryTest, WhereParsesNestingUpToTheLimit) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  const std::string comparison = "state = FAILED";
  auto f = RunFilter::Parse(std::string(kMaxWhereDepth, '(') + comparison + std::string(kMaxWhereDepth, ')'), fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->Matches(rows[0]));
  EXPECT_TRUE(f->Matches(rows[3]));
  std::string nots;
  for (int i = 0; i < kMaxWhereDepth; ++i) nots += "not ";  // an even count: the same as none
  f = RunFilter::Parse(nots + comparison, fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->Matches(rows[3]));
  // Mixed: 100 levels of each is still 200.
  std::string mixed;
  for (int i = 0; i < kMaxWhereDepth / 2; ++i) mixed += "not (";
  f = RunFilter::Parse(mixed + comparison + std::string(kMaxWhereDepth / 2, ')'), fields);
  ASSERT_TRUE(f.ok()) << f.status();
  f = RunFilter::Parse("not " + mixed + comparison + std::string(kMaxWhereDepth / 2, ')'), fields);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("nested deeper than 200 levels"));
}

TEST(RunQueryTest, WhereRefusesALiteralNaN) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  for (const char* expression : {"style_weight = nan", "loss/total != NaN", "style_weight < -nan"}) {
    auto f = RunFilter::Parse(expression, fields);
    ASSERT_FALSE(f.ok()) << expression;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("is not a value to compare with")) << expression;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("diverged = true")) << expression;
  }
  // A quoted 'nan' is a word, as for any text parameter.
  EXPECT_TRUE(RunFilter::Parse("agent = 'nan'", fields).ok());
}

TEST(RunQueryTest, ComparisonsWithANaNValueAreFalseExceptNotEqual) {
  auto rows = Rows();
  rows[0].run.total_loss = std::numeric_limits<double>::quiet_NaN();
  ASSERT_TRUE(std::isnan(rows[0].Field("loss/total").get<double>()));
  const auto fields = FieldNames(rows);
  auto matches = [&](const std::string& expression) {
    auto f = RunFilter::Parse(expression, fields);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() && f->Matches(rows[0]);
  };
  EXPECT_FALSE(matches("loss/total = 100"));
  EXPECT_FALSE(matches("loss/total < 1e300"));
  EXPECT_FALSE(matches("loss/total <= 1e300"));
  EXPECT_FALSE(matches("loss/total > -1e300"));
  EXPECT_FALSE(matches("loss/total >= -1e300"));
  EXPECT_TRUE(matches("loss/total != 100"));
}

TEST(RunQueryTest, SortPutsMissingValuesLast) {
  auto rows = Rows();
  const auto fields = FieldNames(rows);
  auto key = ParseSortKey("loss/total", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_EQ(rows[0].run.index, 2);
  EXPECT_EQ(rows[3].run.index, 3);
  key = ParseSortKey("-loss/total", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_EQ(rows[0].run.index, 0);
  EXPECT_EQ(rows[3].run.index, 3);
  EXPECT_FALSE(ParseSortKey("loss/totl", fields).ok());
}

TEST(RunQueryTest, GroupBySummarisesTheMetric) {
  auto groups = GroupRows(Rows(), "style_layers", "loss/total");
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].runs, 2);
  EXPECT_DOUBLE_EQ(groups[0].best, 90);
  EXPECT_DOUBLE_EQ(groups[0].mean, 95);
  EXPECT_NEAR(groups[0].stddev, 7.0710678, 1e-6);
  EXPECT_EQ(groups[0].best_run_index, 1);
  EXPECT_EQ(groups[1].runs, 2);
  EXPECT_EQ(groups[1].with_metric, 1);  // the failed run has no loss
  EXPECT_DOUBLE_EQ(groups[1].best, 80);
}

// Rows() and a fifth run that diverged at step 40 after a last finite total
// loss of 1, lower than any other run's.
std::vector<RunRow> RowsWithADivergedRun() {
  std::vector<RunRow> rows = Rows();
  RunRow diverged = rows[0];
  diverged.run.id = 5;
  diverged.run.index = 4;
  diverged.run.state = RunState::kFailed;
  diverged.run.last_step = 39;
  diverged.run.total_loss = 1;
  diverged.run.diverged_step = 40;
  diverged.run.error = "diverged at step 40: total loss is NaN";
  rows.push_back(diverged);
  return rows;
}

std::vector<int> Order(const std::vector<RunRow>& rows) {
  std::vector<int> out;
  for (const RunRow& row : rows) out.push_back(row.run.index);
  return out;
}

TEST(RunQueryTest, SortByALossPutsDivergedRunsAfterEveryRunWithALossInBothDirections) {
  auto rows = RowsWithADivergedRun();
  const auto fields = FieldNames(rows);
  auto key = ParseSortKey("loss/total", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  // #4's last finite loss (1) is the lowest, yet it comes after every run
  // with a loss; #3 has none.
  EXPECT_THAT(Order(rows), ElementsAre(2, 1, 0, 4, 3));
  key = ParseSortKey("-loss/total", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_THAT(Order(rows), ElementsAre(0, 1, 2, 4, 3));
  // Other fields order a diverged run like any other.
  key = ParseSortKey("-run", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_THAT(Order(rows), ElementsAre(4, 3, 2, 1, 0));
}

TEST(RunQueryTest, WhereSelectsDivergedRuns) {
  auto rows = RowsWithADivergedRun();
  const auto fields = FieldNames(rows);
  auto f = RunFilter::Parse("diverged = true", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(4));
  f = RunFilter::Parse("state = FAILED and not diverged = true", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(3));
  EXPECT_EQ(rows[4].Field("diverged"), true);
  EXPECT_EQ(rows[4].Field("loss/total"), 1.0);  // the last finite loss, as shown
}

TEST(RunQueryTest, GroupByNeverPicksADivergedRunAsBest) {
  auto groups = GroupRows(RowsWithADivergedRun(), "style_layers", "loss/total");
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].runs, 3);
  EXPECT_EQ(groups[0].with_metric, 2);
  EXPECT_EQ(groups[0].diverged, 1);
  EXPECT_DOUBLE_EQ(groups[0].best, 90);
  EXPECT_EQ(groups[0].best_run_index, 1);
  EXPECT_DOUBLE_EQ(groups[0].mean, 95);  // without the diverged run's 1
  EXPECT_EQ(groups[1].diverged, 0);
  // By a field that is not a loss, a diverged run counts like any other.
  auto by_run = GroupRows(RowsWithADivergedRun(), "style_layers", "run", /*maximize=*/true);
  EXPECT_EQ(by_run[0].best_run_index, 4);
}

// Rows() with evaluations: #0, #1 and #2 evaluated at step 100, #3 (failed,
// no losses) not; and #4, which diverged at step 40 after an evaluation
// better than any other's on every metric.
//   #0 eval/style 0.8, eval/content 0.1, eval/score 0.45, eval/ssim 0.9
//   #1 eval/style 0.4, eval/content 0.2, eval/score 0.3,  eval/ssim 0.7
//   #2 eval/style 0.2, eval/content 0.6, eval/score 0.4,  eval/ssim 0.5
//   #4 eval/style 0.1, eval/content 0.05, eval/score 0.075, eval/ssim 0.99 (diverged)
// By loss/total the order is #2, #1, #0: the reverse of #0's weight.
std::vector<RunRow> EvaluatedRows() {
  std::vector<RunRow> rows = RowsWithADivergedRun();
  // style, content, tv, style_norm, content_norm, tv_norm, ssim, color
  const std::pair<int, Evaluation> evals[] = {{0, {0.8, 0.1, 0.01, 0.8, 0.1, 1, 0.9, 0.3}},
                                              {1, {0.4, 0.2, 0.02, 0.4, 0.2, 1, 0.7, 0.2}},
                                              {2, {0.2, 0.6, 0.03, 0.2, 0.6, 1, 0.5, 0.1}},
                                              {4, {0.1, 0.05, 0.04, 0.1, 0.05, 1, 0.99, 0.05}}};
  for (const auto& [index, eval] : evals) {
    rows[index].run.eval_step = index == 4 ? 39 : 100;
    rows[index].run.eval = eval;
  }
  return rows;
}

TEST(RunQueryTest, EveryEvaluationMetricIsAFieldNullWithoutAnEvaluation) {
  const auto rows = EvaluatedRows();
  const auto fields = FieldNames(rows);
  for (const std::string& name : EvalMetricNames()) {
    EXPECT_THAT(fields, ::testing::Contains(name));
    EXPECT_TRUE(rows[3].Field(name).is_null()) << name;  // #3 has no evaluation
  }
  EXPECT_THAT(fields, ::testing::Contains("eval_step"));
  EXPECT_DOUBLE_EQ(rows[1].Field("eval/score").get<double>(), 0.3);  // (0.4 + 0.2) / 2
  EXPECT_EQ(rows[1].Field("eval/style"), 0.4);
  EXPECT_EQ(rows[1].Field("eval/content_norm"), 0.2);
  EXPECT_EQ(rows[1].Field("eval/ssim"), 0.7);
  EXPECT_EQ(rows[1].Field("eval/color"), 0.2);
  EXPECT_EQ(rows[1].Field("eval_step"), 100);
  EXPECT_TRUE(rows[3].Field("eval_step").is_null());
  // A mistyped name says which it meant, and lists the metrics.
  auto key = ParseSortKey("eval/scor", fields);
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("did you mean 'eval/score'?"));
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("eval/ssim, eval/color, eval_step"));
}

TEST(RunQueryTest, WhereComparesEvaluationMetricsAndSkipsRunsWithout) {
  const auto rows = EvaluatedRows();
  const auto fields = FieldNames(rows);
  auto f = RunFilter::Parse("eval/score < 0.42", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(1, 2, 4));
  f = RunFilter::Parse("eval/ssim >= 0.7 and not diverged = true", fields);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(0, 1));
  f = RunFilter::Parse("eval/content != 0.2", fields);  // a run without one matches nothing
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(Indexes(rows, *f), ElementsAre(0, 2, 4));
}

TEST(RunQueryTest, SortByAnEvaluationMetricPutsDivergedRunsThenRunsWithoutOneLast) {
  auto rows = EvaluatedRows();
  const auto fields = FieldNames(rows);
  auto key = ParseSortKey("eval/score", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  // #4's score (0.075) is the lowest, but it diverged; #3 has none.
  EXPECT_THAT(Order(rows), ElementsAre(1, 2, 0, 4, 3));
  key = ParseSortKey("-eval/score", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_THAT(Order(rows), ElementsAre(0, 2, 1, 4, 3));
  // eval/ssim, higher is better: -eval/ssim lists the best first.
  key = ParseSortKey("-eval/ssim", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_THAT(Order(rows), ElementsAre(0, 1, 2, 4, 3));
  key = ParseSortKey("eval/style", fields);
  ASSERT_TRUE(key.ok());
  SortRows(rows, *key);
  EXPECT_THAT(Order(rows), ElementsAre(2, 1, 0, 4, 3));
}

TEST(RunQueryTest, GroupByAnEvaluationMetricTakesItsNaturalDirection) {
  const auto rows = EvaluatedRows();
  // style_layers: #0, #1 and the diverged #4 share one value, #2 and #3 the other.
  auto groups = GroupRows(rows, "style_layers", "eval/score");
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].runs, 3);
  EXPECT_EQ(groups[0].diverged, 1);
  EXPECT_EQ(groups[0].with_metric, 2);
  EXPECT_DOUBLE_EQ(groups[0].best, 0.3);  // the lowest, not the diverged run's 0.075
  EXPECT_EQ(groups[0].best_run_index, 1);
  EXPECT_DOUBLE_EQ(groups[0].mean, 0.375);
  EXPECT_EQ(groups[1].with_metric, 1);  // #3 has no evaluation
  EXPECT_EQ(groups[1].best_run_index, 2);
  // eval/ssim: the highest is the best (the diverged run's 0.99 left out).
  groups = GroupRows(rows, "style_layers", "eval/ssim");
  EXPECT_DOUBLE_EQ(groups[0].best, 0.9);
  EXPECT_EQ(groups[0].best_run_index, 0);
  // Asked for explicitly, the other direction still holds.
  groups = GroupRows(rows, "style_layers", "eval/ssim", /*maximize=*/false);
  EXPECT_EQ(groups[0].best_run_index, 1);
}

TEST(RunQueryTest, TheDefaultMetricIsTheScoreOnceRunsAreEvaluated) {
  EXPECT_EQ(DefaultMetric(Rows()), "loss/total");
  EXPECT_EQ(DefaultMetric(EvaluatedRows()), "eval/score");
  // An evaluation of a diverged run alone ranks nothing.
  std::vector<RunRow> rows = RowsWithADivergedRun();
  rows[4].run.eval_step = 39;
  EXPECT_EQ(DefaultMetric(rows), "loss/total");
  EXPECT_TRUE(HigherIsBetter("eval/ssim"));
  EXPECT_FALSE(HigherIsBetter("eval/score"));
  EXPECT_FALSE(HigherIsBetter("loss/total"));
  EXPECT_TRUE(IsMetricField("eval/color"));
  EXPECT_TRUE(IsMetricField("loss/tv"));
  EXPECT_FALSE(IsMetricField("eval_step"));
}

TEST(RunQueryTest, TheBestRowSucceededDidNotDivergeAndLeadsItsMetric) {
  const auto rows = EvaluatedRows();
  ASSERT_NE(BestRow(rows, "eval/score"), nullptr);
  EXPECT_EQ(BestRow(rows, "eval/score")->run.index, 1);
  EXPECT_EQ(BestRow(rows, "eval/ssim")->run.index, 0);   // the highest
  EXPECT_EQ(BestRow(rows, "loss/total")->run.index, 2);  // weighted losses pick another run
  EXPECT_EQ(BestRow(Rows(), "eval/score"), nullptr);
}

TEST(RunQueryTest, TheParetoFrontLeavesOutDivergedRunsAndRunsWithoutAnEvaluation) {
  std::vector<RunRow> rows = EvaluatedRows();
  // #0 (0.8, 0.1), #1 (0.4, 0.2), #2 (0.2, 0.6) trade style for content;
  // #4 would dominate all three, but it diverged.
  EXPECT_THAT(ParetoFrontRows(rows), ElementsAre(0, 1, 2));
  rows[1].run.eval.style = 0.9;  // now #0 is lower on both
  EXPECT_THAT(ParetoFrontRows(rows), ElementsAre(0, 2));
  EXPECT_TRUE(ParetoFrontRows(Rows()).empty());
}

TEST(RunQueryTest, ReportFormatsAreStable) {
  SweepView view;
  view.sweep.id = 3;
  view.sweep.name = "s";
  view.sweep.method = "grid";
  view.sweep.source = "s.yaml";
  view.sweep.spec_json = R"({"images": {"sha256:aa": "images/cat.png"}, "artifacts_dir": "/art"})";
  for (const RunRow& row : Rows()) view.runs.push_back(row.run);
  view.runs[0].final_snapshot = "3-s/run-0/attempt-1/final.png";

  ReportOptions csv;
  csv.format = "csv";
  csv.top = 1;
  auto text = RenderReport(view, csv);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "index,state,attempt,agent,content,style_layers,style_weight,step,loss_total,loss_style,loss_content,"
            "loss_tv,duration_s,image,error,diverged_step,eval_step,eval_score,eval_style,eval_content,eval_tv,"
            "eval_style_norm,eval_content_norm,eval_tv_norm,eval_ssim,eval_color\n"
            "0,SUCCEEDED,0,gpu-0,images/cat.png,block1_conv1,0.01,100,100.0,0.0,0.0,0.0,0.5,"
            "/art/3-s/run-0/attempt-1/final.png,,,,,,,,,,,,\n");

  ReportOptions json;
  json.format = "json";
  json.where = "state = FAILED";
  text = RenderReport(view, json);
  ASSERT_TRUE(text.ok()) << text.status();
  const auto parsed = nlohmann::json::parse(*text);
  EXPECT_EQ(parsed["sweep"]["counts"]["SUCCEEDED"], 3);
  ASSERT_EQ(parsed["runs"].size(), 1u);
  EXPECT_EQ(parsed["runs"][0]["index"], 3);
  EXPECT_TRUE(parsed["runs"][0]["loss"].is_null());
  EXPECT_EQ(parsed["runs"][0]["params"]["content"], "images/cat.png");

  ReportOptions bad;
  bad.format = "xml";
  EXPECT_THAT(std::string(RenderReport(view, bad).status().message()), HasSubstr("use table, csv, json, markdown or html"));
}

}  // namespace
}  // namespace stylesweep
