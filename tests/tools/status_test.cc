#include "tools/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;

RunRecord MakeRun(int index, RunState state, double style_weight, int steps = 100) {
  RunRecord run;
  run.id = 10 + index;
  run.index = index;
  run.state = state;
  run.params_json = nlohmann::json{{"style_weight", style_weight}, {"steps", steps}, {"seed", 0}}.dump();
  return run;
}

// Run #0 did 100 steps in the 50 s before the last 50; #1 has done 50 steps
// in the last 50 s; #2 waits. 150 steps in 100 s: 1.5 steps/s, and 150 left.
SweepView Running() {
  SweepView view;
  view.sweep.id = 4;
  view.sweep.name = "weights";
  view.sweep.method = "grid";
  view.sweep.source = "weights.yaml";
  RunRecord done = MakeRun(0, RunState::kSucceeded, 0.1);
  done.started_ms = kNow - 100'000;
  done.finished_ms = kNow - 50'000;
  done.last_step = 100;
  done.total_loss = 42.5;
  RunRecord running = MakeRun(1, RunState::kRunning, 1.0);
  running.started_ms = kNow - 50'000;
  running.last_step = 50;
  running.total_loss = 10;  // lower, but not finished: not the best yet
  view.runs = {done, running, MakeRun(2, RunState::kQueued, 10.0)};
  view.counts = CountByState(view.runs);
  return view;
}

TEST(StatusTest, ProgressRateAndEtaFromTheRecentSteps) {
  const SweepProgress p = MeasureProgress(Running(), kNow);
  EXPECT_EQ(p.steps_done, 150);
  EXPECT_EQ(p.steps_planned, 300);
  EXPECT_DOUBLE_EQ(p.steps_per_second, 1.5);
  ASSERT_TRUE(p.eta_seconds.has_value());
  EXPECT_DOUBLE_EQ(*p.eta_seconds, 100);
  ASSERT_TRUE(p.best.has_value());
  EXPECT_EQ(p.best->index, 0);
}

TEST(StatusTest, ShowsCountsProgressEtaAndTheBestRunWithItsParameters) {
  const std::string text = RenderSweepStatus(Running(), kNow);
  EXPECT_THAT(text, HasSubstr("sweep 4 'weights' (grid, weights.yaml)"));
  EXPECT_THAT(text, HasSubstr("3 runs: 1 SUCCEEDED, 1 RUNNING, 1 QUEUED"));
  EXPECT_THAT(text, HasSubstr("150 of 300 steps (50.0%)"));
  EXPECT_THAT(text, HasSubstr("eta:       1m40s (150 steps at 1.5 steps/s"));
  // The parameter that varies says which run it is; the shared ones do not.
  EXPECT_THAT(text, HasSubstr("best:      run 10 (#0) loss/total 42.5  style_weight=0.1\n"));
}

// Running() with evaluations: #0 is the only run that succeeded; #3 and #4
// succeeded too, with lower total losses than #0 but a worse and a better
// eval/score; #5 diverged with the best evaluation of all.
SweepView Evaluated() {
  SweepView view = Running();
  auto evaluate = [](RunRecord& run, double style, double content) {
    run.eval_step = run.last_step;
    run.eval.style = run.eval.style_norm = style;
    run.eval.content = run.eval.content_norm = content;
  };
  evaluate(view.runs[0], 0.6, 0.2);  // score 0.4
  evaluate(view.runs[1], 0.2, 0.5);  // running: on the front, never the best
  RunRecord worse = MakeRun(3, RunState::kSucceeded, 0.01);
  worse.last_step = 100;
  worse.total_loss = 5;
  evaluate(worse, 0.9, 0.1);  // score 0.5
  RunRecord better = MakeRun(4, RunState::kSucceeded, 0.03);
  better.last_step = 100;
  better.total_loss = 30;
  evaluate(better, 0.3, 0.3);  // score 0.3: the best
  RunRecord diverged = MakeRun(5, RunState::kFailed, 100.0);
  diverged.last_step = 20;
  diverged.diverged_step = 21;
  evaluate(diverged, 0.01, 0.01);
  RunRecord dominated = MakeRun(6, RunState::kSucceeded, 0.05);
  dominated.last_step = 100;
  dominated.total_loss = 1;
  evaluate(dominated, 0.7, 0.35);  // behind #0 and #4 on both
  view.runs.push_back(worse);
  view.runs.push_back(better);
  view.runs.push_back(diverged);
  view.runs.push_back(dominated);
  view.counts = CountByState(view.runs);
  return view;
}

TEST(StatusTest, TheBestRunIsTheBestByEvalScoreAndTheParetoFrontIsNamed) {
  const SweepProgress p = MeasureProgress(Evaluated(), kNow);
  ASSERT_TRUE(p.best.has_value());
  EXPECT_EQ(p.best->index, 4);
  EXPECT_EQ(p.best_metric, "eval/score");
  std::vector<int> front;
  for (const RunRecord& run : p.pareto_front) front.push_back(run.index);
  EXPECT_THAT(front, ::testing::ElementsAre(0, 1, 3, 4));
  const std::string text = RenderSweepStatus(Evaluated(), kNow);
  EXPECT_THAT(text, HasSubstr("best:      run 14 (#4) eval/score 0.3  style_weight=0.03\n"));
  EXPECT_THAT(text, HasSubstr("pareto front: runs #0, #1, #3, #4 (of eval/style and eval/content, lower better on "
                              "both)\n"));
}

TEST(StatusTest, RunsWithoutAnEvaluationAreRankedByTheirLossAndNameNoFront) {
  // Running() has no evaluation: the best by loss/total, and no front line.
  const std::string text = RenderSweepStatus(Running(), kNow);
  EXPECT_THAT(text, HasSubstr("best:      run 10 (#0) loss/total 42.5"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("pareto front")));
  // Only a running run evaluated so far: it is on the front, and the best
  // run that succeeded is still found, by its loss.
  SweepView view = Running();
  view.runs[1].eval_step = 50;
  view.runs[1].eval.style = 0.5;
  const SweepProgress p = MeasureProgress(view, kNow);
  ASSERT_TRUE(p.best.has_value());
  EXPECT_EQ(p.best->index, 0);
  EXPECT_EQ(p.best_metric, "loss/total");
  EXPECT_THAT(RenderSweepStatus(view, kNow), HasSubstr("pareto front: run #1 ("));
}

TEST(StatusTest, FailedRunsShowTheirErrorAndTheEndOfTheAgentsLog) {
  SweepView view = Running();
  RunRecord failed = MakeRun(3, RunState::kFailed, 100.0);
  failed.attempt = 2;
  failed.agent = "gpu-7";
  failed.error = "style transfer failed: CUDA error: an illegal memory access";
  for (int i = 1; i <= 14; ++i) failed.log_tail += "[info] line " + std::to_string(i) + "\n";
  view.runs.push_back(failed);
  const std::string text = RenderSweepStatus(view, kNow);
  EXPECT_THAT(text, HasSubstr("failed runs:\n  run 13 (#3, attempt 2, agent gpu-7): style transfer failed: CUDA error"));
  EXPECT_THAT(text, HasSubstr("the agent's log, last 10 lines:\n      [info] line 5\n"));
  EXPECT_THAT(text, HasSubstr("      [info] line 14\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("line 4\n")));
  EXPECT_THAT(RenderSweepStatus(Running(), kNow), ::testing::Not(HasSubstr("failed runs")));
}

TEST(StatusTest, OnlyRecentStepsCountTowardsTheRate) {
  // The running run was lost and an hour has passed with no agent to take
  // the queued ones: no rate, so no ETA, and the user is told why.
  const int64_t later = kNow + 3'600'000;
  SweepView view = Running();
  view.runs[1].state = RunState::kLost;
  view.runs[1].finished_ms = kNow;
  const SweepProgress p = MeasureProgress(view, later);
  EXPECT_FALSE(p.eta_seconds.has_value());
  EXPECT_THAT(RenderSweepStatus(view, later), HasSubstr("eta:       unknown: no steps in the last 10 minutes"));
}

TEST(StatusTest, RunsThatEndedEarlyPlanNoMoreSteps) {
  SweepView view;
  view.sweep.method = "grid";
  RunRecord pruned = MakeRun(0, RunState::kPruned, 0.1);
  pruned.last_step = 30;
  RunRecord failed = MakeRun(1, RunState::kFailed, 1.0);
  failed.last_step = 5;
  view.runs = {pruned, failed};
  const SweepProgress p = MeasureProgress(view, kNow);
  EXPECT_EQ(p.steps_done, 35);
  EXPECT_EQ(p.steps_planned, 35);
  const std::string text = RenderSweepStatus(view, kNow);
  EXPECT_THAT(text, HasSubstr("nothing left to run"));
  EXPECT_THAT(text, HasSubstr("best:      none yet (no run has succeeded)"));
}

TEST(StatusTest, ABayesSweepStillGoingPlansTheRunsItHasYetToPropose) {
  SweepView view;
  view.sweep.method = "bayes";
  view.sweep.run_cap = 5;
  view.runs = {MakeRun(0, RunState::kRunning, 0.1, 20), MakeRun(1, RunState::kQueued, 0.2, 20)};
  EXPECT_EQ(MeasureProgress(view, kNow).steps_planned, 5 * 20);
}

TEST(StatusTest, FormatsDurations) {
  EXPECT_EQ(FormatSeconds(48.4), "48s");
  EXPECT_EQ(FormatSeconds(725), "12m05s");
  EXPECT_EQ(FormatSeconds(3 * 3600 + 4 * 60 + 59), "3h04m");
}

}  // namespace
}  // namespace stylesweep
