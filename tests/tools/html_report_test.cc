#include "tools/html_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

HtmlReportData Data() {
  HtmlReportData data;
  data.view.sweep.id = 1;
  data.view.sweep.name = "grid <demo>";
  data.view.sweep.method = "grid";
  data.view.sweep.source = "demo.yaml";
  data.view.sweep.spec_json = R"({"images": {"sha256:00": "images/starry.jpg", "sha256:aa": "images/cat.png"}, "artifacts_dir": "/art"})";
  int index = 0;
  for (double weight : {1.0, 2.0}) {
    for (const char* layer : {"block1_conv1", "block2_conv1"}) {
      RunRecord run;
      run.id = index + 1;
      run.index = index;
      run.attempt = 1;
      run.state = RunState::kSucceeded;
      run.params_json =
          nlohmann::json{{"content", "sha256:aa"}, {"style_weight", weight}, {"style_layers", {layer}}}.dump();
      run.last_step = 2;
      run.total_loss = 100.0 - index;  // the last run is best
      run.final_snapshot = "run-" + std::to_string(index) + "/final.png";
      data.metrics[run.id] = {{0, 1, 1, 1, 1000, 0}, {1, 1, 1, 1, 500, 0}, {2, 1, 1, 1, run.total_loss, 0}};
      data.snapshots[run.id] = {{run.id, 1, 1, "run-" + std::to_string(index) + "/step-1.png", false}};
      data.view.runs.push_back(run);
      ++index;
    }
  }
  data.read_artifact = [](const std::string& ref) -> absl::StatusOr<std::string> {
    if (ref == "run-0/final.png") return absl::NotFoundError("gone");
    return std::string("\x89PNG\r\n\x1a\n") + ref;
  };
  return data;
}

TEST(HtmlReportTest, IsOneSelfContainedPage) {
  const std::string html = RenderHtmlReport(Data());
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("grid &lt;demo&gt;"));  // escaped
  EXPECT_THAT(html, Not(HasSubstr("src=\"http")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("src=\"data:image/png;base64,"));
  // The inputs by the names the user wrote, the content image first.
  const size_t content = html.find("<figcaption>content: images/cat.png</figcaption>");
  const size_t style = html.find("<figcaption>style: images/starry.jpg</figcaption>");
  ASSERT_NE(content, std::string::npos);
  ASSERT_NE(style, std::string::npos);
  EXPECT_LT(content, style);
}

TEST(HtmlReportTest, TwoVaryingParametersMakeAGridWithTheBestRunMarked) {
  const std::string html = RenderHtmlReport(Data());
  // style_weight varies slowest over the runs, as the sweep's first
  // parameter does: it goes down, style_layers across.
  EXPECT_THAT(html, HasSubstr("<table class=\"grid\"><tr><th>style_weight \\ style_layers</th>"));
  EXPECT_THAT(html, HasSubstr("<figure class=\"card best\" data-run=\"3\">"));
  EXPECT_THAT(html, HasSubstr("<div class=\"missing thumb\">gone</div>"));  // a lost file says so
}

TEST(HtmlReportTest, LossCurvesAreInlineSvgWithOneLinePerRun) {
  const std::string html = RenderHtmlReport(Data());
  size_t lines = 0;
  for (size_t pos = html.find("<polyline"); pos != std::string::npos; pos = html.find("<polyline", pos + 1)) ++lines;
  EXPECT_EQ(lines, 4u);
  EXPECT_THAT(html, HasSubstr("class=\"curve best\""));
  EXPECT_THAT(html, HasSubstr(">1e2</text>"));  // log scale ticks
  EXPECT_THAT(html, HasSubstr("best run #3 in red"));
  EXPECT_THAT(html, HasSubstr("step 1</figcaption>"));  // snapshots over steps
}

TEST(HtmlReportTest, ADivergedRunIsBadgedAndNeverTheBest) {
  HtmlReportData data = Data();
  // #3, the lowest loss, diverged at step 2: its loss and image are its
  // last finite ones.
  RunRecord& run = data.view.runs[3];
  run.state = RunState::kFailed;
  run.diverged_step = 2;
  run.error = "diverged at step 2: total loss is NaN";
  const std::string html = RenderHtmlReport(data);
  EXPECT_THAT(html, HasSubstr("<figure class=\"card best\" data-run=\"2\">"));
  EXPECT_THAT(html, HasSubstr("<figure class=\"card diverged\" data-run=\"3\">"));
  EXPECT_THAT(html, Not(HasSubstr("card best diverged")));
  EXPECT_THAT(html, HasSubstr("last finite loss 97 <span class=\"state FAILED\">FAILED</span> "
                              "<span class=\"badge diverged\">diverged at step 2</span>"));
  EXPECT_THAT(html, HasSubstr("alt=\"run 3, its last finite image\""));
  EXPECT_THAT(html, HasSubstr("best run #2 in red"));
  EXPECT_THAT(html, HasSubstr("4 runs: 3 SUCCEEDED, 1 FAILED (1 diverged)"));
  // Not among the best runs' snapshots either.
  EXPECT_THAT(html, Not(HasSubstr("<h3>#3 ")));
}

}  // namespace
}  // namespace stylesweep
