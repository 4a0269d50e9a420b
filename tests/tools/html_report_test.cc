#include "tools/html_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
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

// Data() with evaluations. By loss #3 is best; by eval/score #0 is.
//   #0 eval/style 0.2, eval/content 0.3, eval/score 0.25  (front)
//   #1 eval/style 0.5, eval/content 0.1, eval/score 0.3   (front)
//   #2 eval/style 0.6, eval/content 0.4, eval/score 0.5   (dominated by #0)
//   #3 eval/style 0.9, eval/content 0.05, eval/score 0.475 (front)
HtmlReportData EvaluatedData() {
  HtmlReportData data = Data();
  const double style[] = {0.2, 0.5, 0.6, 0.9}, content[] = {0.3, 0.1, 0.4, 0.05};
  for (int i = 0; i < 4; ++i) {
    RunRecord& run = data.view.runs[i];
    run.eval_step = 2;
    run.eval.style = run.eval.style_norm = style[i];
    run.eval.content = run.eval.content_norm = content[i];
    run.eval.ssim = 0.5 + 0.1 * i;
  }
  return data;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// The points attribute of the scatter's front polyline, split at spaces.
std::vector<std::string> FrontVertices(const std::string& html) {
  const std::string open = "<polyline class=\"front\" points=\"";
  const size_t start = html.find(open);
  if (start == std::string::npos) return {};
  const size_t end = html.find('"', start + open.size());
  return absl::StrSplit(html.substr(start + open.size(), end - start - open.size()), ' ', absl::SkipEmpty());
}

TEST(HtmlReportTest, TheBestRunIsTheBestByEvalScoreNotByLoss) {
  const std::string html = RenderHtmlReport(EvaluatedData());
  EXPECT_THAT(html, HasSubstr("<figure class=\"card best\" data-run=\"0\">"));
  EXPECT_EQ(Count(html, "class=\"card best"), 1u);
  EXPECT_THAT(html, HasSubstr("best run #0 (by eval/score) in red"));
  EXPECT_THAT(html, HasSubstr("eval/score 0.25, loss 100 "));
  // The best runs' snapshots in order of eval/score: #0, #1, #3.
  const size_t first = html.find("<h3>#0 "), second = html.find("<h3>#1 "), third = html.find("<h3>#3 ");
  ASSERT_NE(first, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_THAT(html, Not(HasSubstr("<h3>#2 ")));
  // The table of runs shows the evaluation beside the losses, each row the
  // target of its point.
  EXPECT_THAT(html, HasSubstr("<th>state</th><th>eval/score</th><th>eval/style</th><th>eval/content</th>"
                              "<th>eval/ssim</th><th>eval/color</th><th>step</th><th>loss/total</th>"));
  EXPECT_THAT(html, HasSubstr("<tr id=\"run-2\"><td>#2</td>"));
  EXPECT_THAT(html, HasSubstr("<td>0.5</td><td>0.6</td><td>0.4</td><td>0.7</td><td>0</td><td>2</td><td>98</td>"));
}

TEST(HtmlReportTest, TheScatterHasAPointPerEvaluatedRunAndJoinsTheParetoFront) {
  const std::string html = RenderHtmlReport(EvaluatedData());
  EXPECT_EQ(Count(html, "<svg class=\"scatter\""), 1u);
  EXPECT_EQ(Count(html, "<a href=\"#run-"), 4u);
  EXPECT_EQ(Count(html, "class=\"pt front"), 3u);
  EXPECT_THAT(html, HasSubstr("<a href=\"#run-2\" class=\"pt\" data-run=\"2\">"));
  EXPECT_THAT(html, HasSubstr("<a href=\"#run-0\" class=\"pt front best\" data-run=\"0\">"));
  // The front from the lowest eval/content: #3, #1, #0.
  const std::vector<std::string> vertices = FrontVertices(html);
  ASSERT_EQ(vertices.size(), 3u);
  auto x_of = [](const std::string& vertex) { return std::stod(vertex.substr(0, vertex.find(','))); };
  EXPECT_LT(x_of(vertices[0]), x_of(vertices[1]));
  EXPECT_LT(x_of(vertices[1]), x_of(vertices[2]));
  // Linear axes here (0.05 to 0.4 spans less than two decades), labelled.
  EXPECT_THAT(html, HasSubstr(">eval/content: lower keeps more of the content</text>"));
  EXPECT_THAT(html, HasSubstr(">eval/style: lower takes more of the style</text>"));
  EXPECT_THAT(html, Not(HasSubstr("(log scale)")));
  // Each point's image on hover; run-0's file is gone, so it has none.
  EXPECT_EQ(Count(html, "<image class=\"hover\" href=\"data:image/png;base64,"), 3u);
  EXPECT_THAT(html, HasSubstr("class=\"legend\""));
  EXPECT_THAT(html, HasSubstr("the best by eval/score</text>"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

TEST(HtmlReportTest, TheScatterLeavesOutDivergedRunsAndTurnsLogarithmicOverTwoDecades) {
  HtmlReportData data = EvaluatedData();
  data.view.runs[1].state = RunState::kFailed;
  data.view.runs[1].diverged_step = 2;
  data.view.runs[3].eval.content = 0.0005;  // 0.0005 to 0.4: almost three decades
  const std::string html = RenderHtmlReport(data);
  EXPECT_EQ(Count(html, "<a href=\"#run-"), 3u);
  EXPECT_THAT(html, Not(HasSubstr("<a href=\"#run-1\"")));
  EXPECT_EQ(FrontVertices(html).size(), 2u);  // #3 and #0; #2 is still behind #0
  EXPECT_THAT(html, HasSubstr(">eval/content (log scale): lower keeps more of the content</text>"));
  EXPECT_THAT(html, HasSubstr(">0.0001</text>"));  // a tick per decade
  EXPECT_THAT(html, HasSubstr(">1</text>"));
  EXPECT_THAT(html, HasSubstr(">eval/style: lower takes more of the style</text>"));
}

TEST(HtmlReportTest, WithoutEvaluationsThereIsNoScatterAndTheLossRanks) {
  const std::string html = RenderHtmlReport(Data());
  EXPECT_THAT(html, Not(HasSubstr("class=\"scatter\"")));
  EXPECT_THAT(html, Not(HasSubstr("eval/")));
  EXPECT_THAT(html, HasSubstr("best run #3 in red"));
}

TEST(HtmlReportTest, TextInTheScatterIsEscaped) {
  HtmlReportData data = EvaluatedData();
  for (RunRecord& run : data.view.runs) {
    nlohmann::json params = nlohmann::json::parse(run.params_json);
    params["label"] = "<img src=x onerror=alert(1)>\"'" + std::to_string(run.index);
    run.params_json = params.dump();
  }
  const std::string html = RenderHtmlReport(data);
  EXPECT_THAT(html, Not(HasSubstr("<img src=x")));
  EXPECT_THAT(html, HasSubstr("<title>#0 label = &lt;img src=x onerror=alert(1)&gt;&quot;'0; style_layers"));
}

}  // namespace
}  // namespace stylesweep
