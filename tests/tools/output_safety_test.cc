// Text from a sweep file, an agent or a client reaches reports as it was
// sent: these tests check that no report lets it act on what shows it (a
// terminal, a spreadsheet, a Markdown renderer).

#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tools/report.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFormula[] = "=cmd|' /C calc'!A0";

RunRecord Run(int index, const nlohmann::json& label, double offset, RunState state) {
  RunRecord run;
  run.id = index + 1;
  run.index = index;
  run.state = state;
  run.params_json = nlohmann::json{{"label", label}, {"offset", offset}, {"steps", 3}}.dump();
  return run;
}

// Two runs whose names, errors and parameters carry what a hostile or careless
// sweep file could: terminal escapes, spreadsheet formulas, HTML, table pipes.
SweepView CraftedView() {
  SweepView view;
  view.sweep.id = 3;
  view.sweep.name = "red\x1b[31mname";
  view.sweep.method = "grid";
  view.sweep.source = "<script>alert(1)</script>.yaml";
  view.sweep.spec_json = nlohmann::json::object().dump();
  RunRecord done = Run(0, kFormula, -0.5, RunState::kSucceeded);
  done.agent = "@agent";
  done.last_step = 3;
  done.total_loss = 1.5;
  done.final_snapshot = "a|b.png";
  RunRecord failed = Run(1, "a|b", 2, RunState::kFailed);
  failed.agent = "gpu-1";
  failed.error = "+boom\x1b[2J<script>alert(1)</script>";
  view.runs = {done, failed};
  view.counts = CountByState(view.runs);
  return view;
}

std::string Report(const SweepView& view, const std::string& format) {
  ReportOptions options;
  options.format = format;
  auto text = RenderReport(view, options);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(OutputSafetyTest, CsvQuotesTextCellsThatASpreadsheetWouldRunAsFormulas) {
  const std::string csv = Report(CraftedView(), "csv");
  EXPECT_THAT(csv, HasSubstr("\"'=cmd|' /C calc'!A0\""));  // a string parameter
  EXPECT_THAT(csv, HasSubstr(",\"'@agent\","));            // the agent
  EXPECT_THAT(csv, HasSubstr(",\"'+boom"));                // the error
  EXPECT_THAT(csv, Not(HasSubstr(",=cmd")));
  EXPECT_THAT(csv, Not(HasSubstr(",@agent")));
  // Numbers stay numbers, negative ones included.
  EXPECT_THAT(csv, HasSubstr(",-0.5,"));
  EXPECT_THAT(csv, Not(HasSubstr("'-0.5")));
  // Ordinary text is left alone.
  EXPECT_THAT(csv, HasSubstr(",gpu-1,a|b,"));
}

TEST(OutputSafetyTest, MarkdownCarriesNoRawHtmlAndNoTableBreakingPipes) {
  const std::string md = Report(CraftedView(), "markdown");
  EXPECT_THAT(md, Not(HasSubstr("<script>")));
  EXPECT_THAT(md, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(md, HasSubstr("a\\|b"));  // the string parameter and the image
  EXPECT_THAT(md, Not(HasSubstr("a|b")));
  EXPECT_THAT(md, HasSubstr("=cmd\\|' /C calc'!A0"));
  // Every row of the run table has as many cells as its header.
  std::vector<int> pipes;
  std::istringstream lines(md);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("|", 0) != 0) continue;
    int n = 0;
    for (size_t i = 0; i < line.size(); ++i) n += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    pipes.push_back(n);
  }
  ASSERT_EQ(pipes.size(), 4u);  // header, rule, two runs
  EXPECT_EQ(pipes[2], pipes[0]);
  EXPECT_EQ(pipes[3], pipes[0]);
}

TEST(OutputSafetyTest, MarkdownTextEscapesHtmlPipesBackticksAndLineBreaks) {
  EXPECT_EQ(MarkdownText("a|b `x` <b>&\nc"), "a\\|b \\`x\\` &lt;b&gt;&amp; c");
  EXPECT_EQ(MarkdownText("images/cat.png"), "images/cat.png");
}

}  // namespace
}  // namespace stylesweep
