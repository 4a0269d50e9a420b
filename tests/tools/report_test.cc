#include "tools/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace stylesweep {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

RunRecord Run(int index, double style_weight, RunState state) {
  RunRecord run;
  run.id = index + 1;
  run.index = index;
  run.state = state;
  run.params_json = nlohmann::json{{"content", "sha256:aa"}, {"style", "sha256:bb"}, {"style_weight", style_weight},
                                   {"steps", 3}}
                        .dump();
  return run;
}

SweepView View() {
  SweepView view;
  view.sweep.id = 7;
  view.sweep.name = "demo";
  view.sweep.method = "grid";
  view.sweep.source = "demo.yaml";
  view.sweep.spec_json =
      nlohmann::json{{"images", {{"sha256:aa", "images/cat.png"}, {"sha256:bb", "images/starry.jpg"}}},
                     {"artifacts_dir", "/data/artifacts"}}
          .dump();
  RunRecord done = Run(0, 0.01, RunState::kSucceeded);
  done.last_step = 3;
  done.total_loss = 123.456;
  done.started_ms = 1000;
  done.finished_ms = 3500;
  done.final_snapshot = "7-demo/run-0/attempt-1/final.png";
  RunRecord failed = Run(1, 1.0, RunState::kFailed);
  failed.error = "cannot decode image";
  view.runs = {done, failed};
  view.counts = CountByState(view.runs);
  return view;
}

TEST(ReportTest, OneRowPerRunWithVaryingParametersAsColumns) {
  const std::string table = RenderRunTable(View());
  EXPECT_THAT(table, HasSubstr("sweep 7 'demo' (grid, demo.yaml): 2 runs: 1 SUCCEEDED, 1 FAILED"));
  // Shared settings once, with the names the user wrote for images.
  EXPECT_THAT(table, HasSubstr("content=cat.png"));
  EXPECT_THAT(table, HasSubstr("steps=3"));
  EXPECT_THAT(table, Not(HasSubstr("sha256:")));
  EXPECT_THAT(table, HasSubstr("images under /data/artifacts"));
  // The varying parameter is a column; each run is a row.
  EXPECT_THAT(table, HasSubstr("style_weight"));
  EXPECT_THAT(table, ContainsRegex("#0 +0.01 +SUCCEEDED +3 +123.5"));
  EXPECT_THAT(table, HasSubstr("123.5"));
  EXPECT_THAT(table, HasSubstr("2.5s"));
  EXPECT_THAT(table, HasSubstr("7-demo/run-0/attempt-1/final.png"));
  EXPECT_THAT(table, HasSubstr("error: cannot decode image"));
}

TEST(ReportTest, SweepListShowsCounts) {
  const SweepView view = View();
  EXPECT_THAT(RenderSweepList({view}), HasSubstr("2 runs: 1 SUCCEEDED, 1 FAILED"));
  EXPECT_THAT(RenderSweepList({}), HasSubstr("no sweeps yet"));
}

// Nine runs, seven of them evaluated and not diverged, with a known front of
// (eval/style, eval/content):
//   #0 (0.9, 0.05)  front: the lowest content
//   #1 (0.5, 0.1)   front
//   #2 (0.5, 0.1)   front: equal to #1, so neither dominates the other
//   #3 (0.6, 0.1)   behind #1 and #2 (same content, more style error)
//   #4 (0.2, 0.4)   front
//   #5 (0.6, 0.1)   behind #1 and #2: a duplicate of #3, dominated as it is
//   #6 (0.1, 0.9)   front: the lowest style
//   #7 (0.05, 0.05) would dominate every run, but it diverged
//   #8              queued, no evaluation
SweepView ParetoView() {
  SweepView view = View();
  view.runs.clear();
  const double points[][2] = {{0.9, 0.05}, {0.5, 0.1}, {0.5, 0.1}, {0.6, 0.1}, {0.2, 0.4},
                              {0.6, 0.1},  {0.1, 0.9}, {0.05, 0.05}};
  for (int i = 0; i < 9; ++i) {
    RunRecord run = Run(i, 0.01 * (i + 1), i == 8 ? RunState::kQueued : RunState::kSucceeded);
    if (i < 8) {
      run.last_step = 3;
      run.total_loss = 100 + i;
      run.eval_step = 3;
      run.eval.style = run.eval.style_norm = points[i][0];
      run.eval.content = run.eval.content_norm = points[i][1];
    }
    if (i == 7) {
      run.state = RunState::kFailed;
      run.diverged_step = 3;
      run.last_step = 2;
      run.eval_step = 2;
    }
    view.runs.push_back(run);
  }
  view.counts = CountByState(view.runs);
  return view;
}

std::vector<int> JsonIndexes(const std::string& json_text) {
  std::vector<int> out;
  const nlohmann::json report = nlohmann::json::parse(json_text);
  for (const auto& run : report["runs"]) out.push_back(run["index"].get<int>());
  return out;
}

TEST(ReportTest, ParetoKeepsExactlyTheRunsNoOtherEvaluatedRunDominates) {
  ReportOptions options;
  options.pareto = true;
  options.format = "json";
  auto text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(JsonIndexes(*text), ::testing::ElementsAre(0, 1, 2, 4, 6));
  EXPECT_EQ(nlohmann::json::parse(*text)["pareto"],
            (nlohmann::json{{"objectives", {"eval/style", "eval/content"}}, {"front", 5}, {"of", 9}, {"candidates", 7}}));

  options.format = "table";
  text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("\n5 of 9 runs on the Pareto front of eval/style and eval/content (7 with an "
                               "evaluation and not diverged)\n"));
  EXPECT_THAT(*text, Not(HasSubstr("showing")));
  EXPECT_THAT(*text, ContainsRegex("\n#6 +0.07 +SUCCEEDED +3 +0.5 +0.1 +0.9 "));
  EXPECT_THAT(*text, Not(ContainsRegex("\n#[3578] ")));
}

TEST(ReportTest, ParetoFiltersWithWhereFirstThenSortsAndCuts) {
  ReportOptions options;
  options.pareto = true;
  options.format = "json";
  // Without #1 and #2, nothing is lower than #3 and #5 on both any more.
  options.where = "run != 1 and run != 2";
  auto text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(JsonIndexes(*text), ::testing::ElementsAre(0, 3, 4, 5, 6));
  // Without #1 alone, #2 still keeps them behind.
  options.where = "run != 1";
  text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(JsonIndexes(*text), ::testing::ElementsAre(0, 2, 4, 6));
  // Sorted along the front, then the first three.
  options.where.clear();
  options.sort = "eval/style";
  text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(JsonIndexes(*text), ::testing::ElementsAre(6, 4, 1, 2, 0));
  options.top = 3;
  options.format = "table";
  text = RenderReport(ParetoView(), options);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("5 of 9 runs on the Pareto front of eval/style and eval/content"));
  EXPECT_THAT(*text, HasSubstr("showing 3 of them\n"));
}

TEST(ReportTest, ParetoWithoutAnEvaluatedRunSaysSo) {
  ReportOptions options;
  options.pareto = true;
  auto text = RenderReport(View(), options);  // no evaluations at all
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(text.status())) << text.status();
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("--pareto: none of the 2 runs of sweep 7 'demo' has an evaluation (eval/style, "
                        "eval/content) and did not diverge"));
  // Only the diverged run selected.
  options.where = "diverged = true";
  text = RenderReport(ParetoView(), options);
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("none of the 1 run --where selects in sweep 7"));
}

TEST(ReportTest, TheTableShowsEvaluationsBeforeLossesAndGroupsByTheScore) {
  const SweepView view = ParetoView();
  auto text = RenderReport(view, ReportOptions{});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, ContainsRegex("run +style_weight +state +step +eval/score +eval/style +eval/content +eval/ssim +"
                                   "eval/color +loss/total +loss/style +loss/content +loss/tv +time +image\n"));
  EXPECT_THAT(*text, ContainsRegex("\n#8 +0.09 +QUEUED +- +- +- +- +- +- +- +- +- +- "));
  // --group-by summarises eval/score unless told otherwise; the diverged
  // run's 0.05 is not the best.
  ReportOptions grouped;
  grouped.group_by = "state";
  text = RenderReport(view, grouped);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, ContainsRegex("state +runs +best eval/score +mean +stddev +best run +diverged\n"));
  EXPECT_THAT(*text, ContainsRegex("\nSUCCEEDED +7 +0.3 +"));
  grouped.metric = "eval/ssim";
  EXPECT_THAT(*RenderReport(view, grouped), HasSubstr("best eval/ssim"));
  // Runs without evaluations keep the loss.
  grouped.metric.clear();
  EXPECT_THAT(*RenderReport(View(), grouped), HasSubstr("best loss/total"));
}

}  // namespace
}  // namespace stylesweep
