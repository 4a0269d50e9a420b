// Text from a sweep file, an agent or a client reaches reports as it was
// sent: these tests check that no report lets it act on what shows it (a
// terminal, a spreadsheet, a Markdown renderer).

#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tools/compare.h"
#include "tools/live_view.h"
#include "tools/report.h"
#include "tools/status.h"
#include "tools/terminal_text.h"

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

TEST(OutputSafetyTest, ForTerminalEscapesControlCharactersAndKeepsUtf8) {
  EXPECT_EQ(ForTerminal("red\x1b[31mname"), "red\\x1b[31mname");
  EXPECT_EQ(ForTerminal("a\tb\nc\rd\x7f\x07"), "a b\\nc\\x0dd\\x7f\\x07");
  EXPECT_EQ(ForTerminal("csi\xc2\x9b" "2J"), "csi\\u009b2J");  // C1 CSI, in UTF-8
  EXPECT_EQ(ForTerminal("raw\x9b" "2J"), "raw\\x9b2J");        // the same byte on its own
  EXPECT_EQ(ForTerminal("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\xa8"), "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\xa8");
  EXPECT_EQ(ForTerminal("cut\xe6\x97"), "cut\\xe6\\x97");
}

// No raw ESC, C0 (but the line breaks) or C1 character in terminal output.
void ExpectNoControlCharacters(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    EXPECT_FALSE((c < 0x20 && c != '\n') || c == 0x7f) << "byte " << int(c) << " at " << i << " in:\n" << text;
    EXPECT_FALSE(c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9f) << text;
  }
}

TEST(OutputSafetyTest, ReportTableAndSweepListEscapeControlCharacters) {
  SweepView view = CraftedView();
  view.runs[1].final_snapshot.clear();
  const std::string table = Report(view, "table");
  ExpectNoControlCharacters(table);
  EXPECT_THAT(table, HasSubstr("red\\x1b[31mname"));
  EXPECT_THAT(table, HasSubstr("error: +boom\\x1b[2J"));
  ExpectNoControlCharacters(RenderSweepList({view}));
}

TEST(OutputSafetyTest, StatusEscapesNamesErrorsAndLogLinesButKeepsTheLogsLines) {
  SweepView view = CraftedView();
  view.runs[1].agent = "gpu\x1b]0;title\x07";
  view.runs[1].log_tail = "first \x1b[1mline\nsecond\tline\n";
  const std::string status = RenderSweepStatus(view, 10'000);
  ExpectNoControlCharacters(status);
  EXPECT_THAT(status, HasSubstr("sweep 3 'red\\x1b[31mname'"));
  EXPECT_THAT(status, HasSubstr("agent gpu\\x1b]0;title\\x07): +boom\\x1b[2J"));
  EXPECT_THAT(status, HasSubstr("\n      first \\x1b[1mline\n      second line\n"));
}

TEST(OutputSafetyTest, CompareTableEscapesControlCharacters) {
  const SweepView view = CraftedView();
  Comparison comparison{{view.sweep, view.runs[0], {}, nullptr}, {view.sweep, view.runs[1], {}, nullptr}};
  auto text = RenderComparison(comparison, CompareOptions{});
  ASSERT_TRUE(text.ok()) << text.status();
  ExpectNoControlCharacters(*text);
  EXPECT_THAT(*text, HasSubstr("red\\x1b[31mname"));
  EXPECT_THAT(*text, HasSubstr("+boom\\x1b[2J"));
}

TEST(OutputSafetyTest, AgentsAndWatchEscapeControlCharacters) {
  AgentLine agent;
  agent.agent.name = "evil\x1b[2J";
  agent.agent.host = "host\rfake";
  agent.agent.device_name = "GPU\xc2\x9b";
  agent.agent.quarantine_reason = "bad\x1b[31m";
  agent.state = "quarantined";
  AgentLine busy;
  busy.agent.name = "busy\x1b[1m";
  busy.agent.run_id = 2;
  busy.agent.step = 1;
  busy.agent.steps = 3;
  busy.state = "busy";
  const std::string agents = RenderAgentsTable({agent, busy}, 10'000);
  ExpectNoControlCharacters(agents);
  EXPECT_THAT(agents, HasSubstr("evil\\x1b[2J is quarantined: bad\\x1b[31m"));
  SweepLine sweep;
  sweep.id = 3;
  sweep.name = "red\x1b[31mname";
  sweep.runs_by_state = {{"RUNNING", 1}};
  const std::string frame = RenderWatchFrame({sweep}, {agent, busy}, 10'000);
  ExpectNoControlCharacters(frame);
  EXPECT_THAT(frame, HasSubstr("sweep 3 red\\x1b[31mname"));
  EXPECT_THAT(frame, HasSubstr("on busy\\x1b[1m"));
  EXPECT_THAT(frame, HasSubstr("(evil\\x1b[2J)"));
}

}  // namespace
}  // namespace stylesweep
