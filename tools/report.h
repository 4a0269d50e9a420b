#ifndef STYLESWEEP_TOOLS_REPORT_H_
#define STYLESWEEP_TOOLS_REPORT_H_

// Text renderings of sweeps and runs for the CLI. Pure functions of the
// records, so they read the same whether the records came from the SQLite
// file or from a coordinator.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "nlohmann/json.hpp"
#include "tools/run_query.h"

namespace stylesweep {

// Reads a file under the coordinator's artifacts directory: a snapshot by its
// relative path, or an input image by its blob id ("sha256:<hex>").
using ArtifactReader = std::function<absl::StatusOr<std::string>(const std::string&)>;

// The version of the JSON formats (report and compare). It grows when a field
// changes meaning or goes away; new fields may appear without a new version.
inline constexpr int kReportFormatVersion = 1;

struct SweepView {
  SweepRecord sweep;
  std::vector<RunRecord> runs;            // may be empty in listings
  std::map<std::string, int> counts;      // runs by state name
  int diverged = 0;                       // of the FAILED runs, those that diverged (0 in listings)
};

std::map<std::string, int> CountByState(const std::vector<RunRecord>& runs);
// Runs whose loss became NaN or infinite (RunRecord::diverged).
int CountDiverged(const std::vector<RunRecord>& runs);

// "4 runs: 3 SUCCEEDED, 1 RUNNING"; with diverged runs
// "4 runs: 2 SUCCEEDED, 2 FAILED (1 diverged)".
std::string CountsLine(const std::map<std::string, int>& counts, int diverged = 0);
// The line of a sweep's counts: the view's, or else those of its runs.
std::string SweepCountsLine(const SweepView& view);

// The report of one sweep: a header, the settings shared by every run, then
// one row per run with the parameters that differ between runs, the state,
// the final losses, the duration and the final image's path.
std::string RenderRunTable(const SweepView& view);

struct ReportOptions {
  std::string format = "table";  // table | csv | json | markdown
  std::string sort;              // a field; "-field" sorts descending; empty: run order
  int top = 0;                   // keep the first N rows after sorting; 0: all
  std::string where;             // a filter expression (see run_query.h)
  std::string group_by;          // a field: one row per value with statistics of `metric`
  // What --group-by summarises; empty: DefaultMetric of the sweep's runs
  // (eval/score when they have evaluations, else loss/total).
  std::string metric;
  // Keep only the runs on the Pareto front of eval/style and eval/content
  // (ParetoFrontRows), after --where and before --sort and --top.
  bool pareto = false;
};

// The report of one sweep in the requested format. InvalidArgument for an
// unknown format, field or a malformed --where, saying what is accepted;
// FailedPrecondition for --pareto when no selected run has an evaluation
// that did not diverge (the message says so).
//
// JSON (stable, for scripts; docs/report-formats.md):
//   {"sweep": {"id", "name", "method", "source", "artifacts_dir", "counts": {STATE: n},
//              "diverged", "steps_run", "steps_saved"},
//    "runs": [{"id", "index", "state", "attempt", "agent", "params": {...},
//              "step", "loss": {"total", "style", "content", "tv"} | null,
//              "eval_step" | null, "eval": {"score", "style", "content", "tv", "style_norm",
//              "content_norm", "tv_norm", "ssim", "color"} | null,
//              "diverged", "diverged_step" | null,
//              "duration_s" | null, "image" | null, "error"}]}
//   With --group-by: "groups": [{"value", "runs", "with_metric", "diverged", "best", "mean", "stddev",
//   "best_run"}].
//   With --pareto: "pareto": {"objectives", "front", "of", "candidates"}.
// A diverged run's step, loss, evaluation and image are its last finite ones.
// CSV: a header row, then one row per run: index, state, attempt, agent, each
// parameter (lists joined by ';'), step, loss_total, loss_style,
// loss_content, loss_tv, duration_s, image, error, diverged_step (empty
// unless the run diverged), eval_step, then eval_score ... eval_color (empty
// without an evaluation).
//
// Table and Markdown mark a diverged run's state "FAILED, diverged at step N",
// and show eval/score, eval/style, eval/content, eval/ssim and eval/color
// when any run shown has an evaluation.
absl::StatusOr<std::string> RenderReport(const SweepView& view, const ReportOptions& options);

// The runs --where, --pareto, --sort and --top select, in report order.
absl::StatusOr<std::vector<RunRecord>> SelectRuns(const SweepView& view, const ReportOptions& options);

// A run as the JSON formats write it (see docs/report-formats.md).
nlohmann::json RunToJson(const RunRow& row, const std::string& artifacts_dir);

// The sweep's artifacts directory as its spec records it, or "".
std::string SweepArtifactsDir(const SweepRecord& sweep);

// Helpers the text renderings share: a number in 4 significant digits, a
// duration ("2.5s", "-" before it starts, "..." while it runs), rows as
// columns padded to their widest cell (each cell through ForTerminal), rows as
// a Markdown table (the first row is the header).
std::string FormatNumber(double v);
// A parameter's value for a cell: images by file name, lists joined by ','.
std::string FormatParameter(const std::string& key, const nlohmann::json& value);
std::string FormatDuration(const RunRow& row);
// A run's state for a cell: "FAILED, diverged at step 3" when it diverged.
std::string StateCell(const RunRow& row);
// A field of a run for a cell: numbers as FormatNumber, "-" when null.
std::string MetricCell(const RunRow& row, const std::string& field);
// The evaluation metrics the text formats show (the JSON and CSV have every
// one): eval/score, eval/style, eval/content, eval/ssim, eval/color.
const std::vector<std::string>& ShownEvalMetrics();
std::string RenderColumns(const std::vector<std::vector<std::string>>& rows);
// Text for Markdown, in a table cell or a line: &, <, > as HTML entities (no
// raw HTML reaches the page), | and ` escaped, line breaks as spaces.
std::string MarkdownText(std::string_view text);
// Every cell goes through MarkdownText.
std::string RenderMarkdownTable(const std::vector<std::vector<std::string>>& rows);

// One line per sweep with its run counts by state.
std::string RenderSweepList(const std::vector<SweepView>& sweeps);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_REPORT_H_
