// Opens the HTML report of the fixture sweep in headless Chromium and checks
// what a reader sees: every image decoded, one contact-sheet card per run in
// a rows x columns grid with the best by eval/score outlined, the scatter of
// eval/style against eval/content with its Pareto front, one loss curve per
// run with the best drawn in red, and the table of runs. A small script appended to a copy of the page writes
// those facts into the DOM, which Chromium dumps.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/files.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"
#include "tests/tools/report_fixture.h"
#include "tools/html_report.h"
#include "tools/sweep_source.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;


// $STYLESWEEP_CHROMIUM, else the first Chromium on the PATH.
std::string FindChromium() {
  if (const char* env = std::getenv("STYLESWEEP_CHROMIUM"); env != nullptr && *env != '\0') return env;
  for (const char* name : {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}) {
    if (std::string found = testing::FindProgram(name); !found.empty()) return found;
  }
  return "";
}

constexpr char kChecker[] = R"(<script>
window.addEventListener('load', () => {
  const images = [...document.images];
  const grid = document.querySelector('table.grid');
  const gridRows = grid ? [...grid.rows].slice(1) : [];
  const best = [...document.querySelectorAll('svg.chart polyline.best')];
  const out = {
    images: images.length,
    decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    widths: [...new Set(images.map(i => i.naturalWidth))],
    cards: document.querySelectorAll('figure.card').length,
    grid_rows: gridRows.length,
    grid_columns: grid ? grid.rows[0].cells.length - 1 : 0,
    cells_with_a_card: gridRows.flatMap(r => [...r.cells].slice(1)).filter(c => c.querySelector('figure.card')).length,
    best_card: (document.querySelector('figure.card.best') || {dataset: {}}).dataset.run || null,
    best_card_outline: (() => { const b = document.querySelector('figure.card.best');
                                return b ? getComputedStyle(b).outlineStyle : null; })(),
    curves: document.querySelectorAll('svg.chart polyline').length,
    best_curves: best.length,
    best_stroke: best.length ? getComputedStyle(best[0]).stroke : null,
    other_stroke: (() => { const c = document.querySelector('svg.chart polyline:not(.best)');
                           return c ? getComputedStyle(c).stroke : null; })(),
    best_title: best.length ? best[0].textContent : null,
    table_rows: document.querySelectorAll('table.runs tr').length - 1,
    snapshot_runs: document.querySelectorAll('.steps').length,
    diverged_badges: [...document.querySelectorAll('.badge.diverged')].map(b => b.textContent),
    scatter_points: document.querySelectorAll('svg.scatter a.pt').length,
    scatter_front: [...document.querySelectorAll('svg.scatter a.pt.front')].map(a => a.dataset.run),
    scatter_best: [...document.querySelectorAll('svg.scatter a.pt.best')].map(a => a.dataset.run),
    front_vertices: (() => { const f = document.querySelector('svg.scatter polyline.front');
                             return f ? f.points.numberOfItems : null; })(),
    front_stroke: (() => { const f = document.querySelector('svg.scatter polyline.front');
                           return f ? getComputedStyle(f).stroke : null; })(),
    scatter_links_resolve: [...document.querySelectorAll('svg.scatter a.pt')].every(
        a => !!document.getElementById(a.getAttribute('href').slice(1))),
    hover_images: [...document.querySelectorAll('svg.scatter image.hover')].map(i => getComputedStyle(i).visibility),
    diverged_card: (() => { const c = document.querySelector('figure.card.diverged');
                            if (!c) return null;
                            const img = c.querySelector('img');
                            return {run: c.dataset.run, outline: getComputedStyle(c).outlineStyle,
                                    image: !!img && img.naturalWidth > 0}; })(),
  };
  const pre = document.createElement('pre');
  pre.id = 'checker';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>)";

TEST(HtmlChromiumTest, TheReportShowsEveryImageTheGridTheCurvesAndTheTable) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "no Chromium found (looked for chromium, chromium-browser, google-chrome on the PATH and "
                    "$STYLESWEEP_CHROMIUM); install Debian's chromium package (deploy/install-deps.sh lists it)";
  }
  const fs::path dir = fs::temp_directory_path() / ("stylesweep-chromium-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_TRUE(testing::WriteFixtureDatabase((dir / "f.db").string(), (dir / "artifacts").string(), true).ok());
  SourceOptions options;
  options.db = (dir / "f.db").string();
  auto source = OpenSweepSource(options);
  ASSERT_TRUE(source.ok()) << source.status();
  auto data = LoadHtmlReportData(**source, "fixture", {});
  ASSERT_TRUE(data.ok()) << data.status();
  for (const RunRecord& run : data->view.runs) ASSERT_TRUE(testing::HasFixtureEvaluation(run)) << "run #" << run.index;
  std::string html = RenderHtmlReport(*data);
  const size_t body_end = html.rfind("</body>");
  ASSERT_NE(body_end, std::string::npos);
  html.insert(body_end, kChecker);
  const fs::path page = dir / "report.html";
  ASSERT_TRUE(WriteFileAtomically(page.string(), html).ok());

  std::string output;
  const int status = testing::RunCommand(
      {testing::FindProgram("timeout"), "60", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--no-first-run", "--user-data-dir=" + (dir / "profile").string(), "--virtual-time-budget=5000", "--dump-dom",
       "file://" + page.string()},
      &output);
  fs::remove_all(dir);
  const std::string open = "<pre id=\"checker\">";
  const size_t start = output.find(open);
  ASSERT_NE(start, std::string::npos) << "chromium (exit " << status << ") showed no checker output:\n"
                                      << output.substr(0, 4000);
  const size_t end = output.find("</pre>", start);
  ASSERT_NE(end, std::string::npos);
  const nlohmann::json seen = nlohmann::json::parse(output.substr(start + open.size(), end - start - open.size()),
                                                    nullptr, false);
  ASSERT_TRUE(seen.is_object()) << output.substr(start, end - start);
  SCOPED_TRACE(seen.dump());

  // Content and style, five final images (#3 failed, #6 and #7 are queued;
  // #5's is its last finite one), and steps 2 and 4 of the three best runs:
  // all decoded, 16 px wide.
  EXPECT_EQ(seen["images"], 13);
  EXPECT_EQ(seen["decoded"], 13);
  EXPECT_EQ(seen["widths"], nlohmann::json::array({16}));
  // Eight runs on a grid of style_weight (4 rows) x learning_rate (2
  // columns), one card per cell; the best by eval/score (#1) outlined, not
  // #2, whose loss is the lowest, and never #5, whose last finite loss and
  // score are lower but which diverged.
  EXPECT_EQ(seen["cards"], 8);
  EXPECT_EQ(seen["grid_rows"], 4);
  EXPECT_EQ(seen["grid_columns"], 2);
  EXPECT_EQ(seen["cells_with_a_card"], 8);
  EXPECT_EQ(seen["best_card"], "1");
  EXPECT_EQ(seen["best_card_outline"], "solid");
  EXPECT_EQ(seen["diverged_card"], (nlohmann::json{{"run", "5"}, {"outline", "none"}, {"image", true}}));
  // On its card and in the table.
  EXPECT_EQ(seen["diverged_badges"], nlohmann::json::array({"diverged at step 3", "diverged at step 3"}));
  // One curve per run that reported losses, the best one in red on top.
  EXPECT_EQ(seen["curves"], 6);
  EXPECT_EQ(seen["best_curves"], 1);
  EXPECT_EQ(seen["best_stroke"], "rgb(214, 39, 40)");
  EXPECT_NE(seen["other_stroke"], seen["best_stroke"]);
  EXPECT_THAT(seen["best_title"].get<std::string>(), ::testing::StartsWith("#1 "));
  // A point per run evaluated that did not diverge (#0, #1, #2, #4), the
  // front (#0, #1, #2) joined by a line, the best ringed, each point a link
  // to its row, each image hidden until hovered.
  EXPECT_EQ(seen["scatter_points"], 4);
  EXPECT_EQ(seen["scatter_front"], nlohmann::json::array({"0", "1", "2"}));
  EXPECT_EQ(seen["scatter_best"], nlohmann::json::array({"1"}));
  EXPECT_EQ(seen["front_vertices"], 3);
  EXPECT_NE(seen["front_stroke"], "none");
  EXPECT_EQ(seen["scatter_links_resolve"], true);
  EXPECT_EQ(seen["hover_images"], nlohmann::json::array({"hidden", "hidden", "hidden", "hidden"}));
  EXPECT_EQ(seen["snapshot_runs"], 3);
  EXPECT_EQ(seen["table_rows"], 8);
}

}  // namespace
}  // namespace stylesweep
