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

}  // namespace
}  // namespace stylesweep
