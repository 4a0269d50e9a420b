// Every text format of `report`, `compare` and `status`, byte for byte,
// against files in tests/tools/golden/, from a database built with fixed
// times, losses and evaluations (report_fixture.h). A change to a format shows up here as a diff to review;
// STYLESWEEP_UPDATE_GOLDEN=1 rewrites the files.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/files.h"
#include "tests/tools/report_fixture.h"
#include "tools/compare.h"
#include "tools/report.h"
#include "tools/status.h"
#include "tools/sweep_source.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;

const fs::path kGoldenDir = fs::path(STYLESWEEP_SOURCE_DIR) / "tests/tools/golden";

void ExpectGolden(const std::string& name, const std::string& actual) {
  const fs::path path = kGoldenDir / name;
  const char* update = std::getenv("STYLESWEEP_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    ASSERT_TRUE(WriteFileAtomically(path.string(), actual).ok()) << path;
    return;
  }
  auto expected = ReadFileToString(path.string());
  ASSERT_TRUE(expected.ok()) << expected.status() << "\nto create it, run the test with STYLESWEEP_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, *expected) << "the output differs from " << path
                               << "; if the change is intended, rerun with STYLESWEEP_UPDATE_GOLDEN=1 and review "
                                  "the diff of tests/tools/golden/";
}

class GoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("stylesweep-golden-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const absl::Status s =
        testing::WriteFixtureDatabase((*dir_ / "fixture.db").string(), "/srv/stylesweep/artifacts", false);
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  // Through the same path as `--db`.
  std::unique_ptr<SweepSource> Source() {
    SourceOptions options;
    options.db = (*dir_ / "fixture.db").string();
    auto source = OpenSweepSource(options);
    EXPECT_TRUE(source.ok()) << source.status();
    return source.ok() ? *std::move(source) : nullptr;
  }

  // The fixture sweep with its evaluations.
  SweepView View() {
    auto view = Source()->GetSweep("fixture");
    EXPECT_TRUE(view.ok()) << view.status();
    if (!view.ok()) return {};
    for (const RunRecord& run : view->runs) EXPECT_TRUE(testing::HasFixtureEvaluation(run)) << "run #" << run.index;
    return *std::move(view);
  }

  std::string Report(const ReportOptions& options) {
    auto text = RenderReport(View(), options);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  std::string Compare(const std::string& a, const std::string& b, const CompareOptions& options) {
    auto source = Source();
    auto comparison = LoadComparison(*source, a, b);
    EXPECT_TRUE(comparison.ok()) << comparison.status();
    if (!comparison.ok()) return "";
    EXPECT_TRUE(testing::HasFixtureEvaluation(comparison->a.run));
    EXPECT_TRUE(testing::HasFixtureEvaluation(comparison->b.run));
    auto text = RenderComparison(*comparison, options);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  static fs::path* dir_;
};

fs::path* GoldenTest::dir_ = nullptr;

TEST_F(GoldenTest, ReportFormats) {
  for (const auto& [format, file] : {std::pair{"table", "report.txt"}, std::pair{"csv", "report.csv"},
                                     std::pair{"json", "report.json"}, std::pair{"markdown", "report.md"}}) {
    ReportOptions options;
    options.format = format;
    ExpectGolden(file, Report(options));
  }
}

TEST_F(GoldenTest, SortTopAndWhere) {
  ReportOptions options;
  options.sort = "loss/total";
  options.top = 3;
  ExpectGolden("report-sort-top.txt", Report(options));
  options = {};
  options.where = "state != QUEUED and learning_rate = 0.05";
  options.format = "csv";
  ExpectGolden("report-where.csv", Report(options));
  // Sorted by a loss either way, the diverged run (#5, whose last finite loss
  // is the lowest) comes last.
  options = {};
  options.where = "diverged = true or state = SUCCEEDED";
  options.sort = "-loss/total";
  options.format = "markdown";
  ExpectGolden("report-diverged.md", Report(options));
}

TEST_F(GoldenTest, SortByEvaluation) {
  // By eval/score, #1 leads and #2 (the lowest loss) follows; the diverged
  // #5, whose score is the lowest, comes after every other evaluated run.
  ReportOptions options;
  options.sort = "eval/score";
  ExpectGolden("report-sort-eval.txt", Report(options));
}

TEST_F(GoldenTest, Pareto) {
  ReportOptions options;
  options.pareto = true;
  options.sort = "eval/content";
  ExpectGolden("report-pareto.txt", Report(options));
  options.format = "json";
  ExpectGolden("report-pareto.json", Report(options));
}

TEST_F(GoldenTest, GroupBy) {
  // Summarising eval/score, the default once runs are evaluated.
  ReportOptions options;
  options.group_by = "style_weight";
  ExpectGolden("report-group-by.txt", Report(options));
  options.format = "json";
  ExpectGolden("report-group-by.json", Report(options));
  options = {};
  options.group_by = "learning_rate";
  options.metric = "loss/total";
  ExpectGolden("report-group-by-loss.txt", Report(options));
}

TEST_F(GoldenTest, Compare) {
  CompareOptions options;
  ExpectGolden("compare.txt", Compare("fixture#2", "fixture#4", options));
  options.format = "markdown";
  ExpectGolden("compare.md", Compare("1#2", "fixture#4", options));
  options.format = "json";
  ExpectGolden("compare.json", Compare("3", "5", options));  // run ids of #2 and #4
  options = {};
  options.all = true;
  ExpectGolden("compare-all.txt", Compare("fixture#0", "fixture#3", options));
}

TEST_F(GoldenTest, Status) {
  // A minute after the sweep started: every run but the queued one is done.
  ExpectGolden("status.txt", RenderSweepStatus(View(), testing::kFixtureStartMs + 60000));
}

}  // namespace
}  // namespace stylesweep
