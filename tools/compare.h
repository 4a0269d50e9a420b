#ifndef STYLESWEEP_TOOLS_COMPARE_H_
#define STYLESWEEP_TOOLS_COMPARE_H_

// `stylesweep compare RUN RUN`: two runs side by side. Pure functions of the
// records, like report.h.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "tools/report.h"

namespace stylesweep {

// One run being compared, with its sweep (for image names and where its
// files are), its current attempt's losses and a reader for its images.
struct CompareSide {
  SweepRecord sweep;
  RunRecord run;
  std::vector<MetricRow> metrics;
  ArtifactReader read_artifact;
};

struct Comparison {
  CompareSide a, b;
};

struct CompareOptions {
  std::string format = "table";  // table | json | markdown | html
  bool all = false;              // every parameter, not only those that differ
};

// Which of two runs is better by a metric, in its natural direction
// (HigherIsBetter in run_query.h). Both need a value; a run that diverged
// loses to one that did not, and two that diverged decide nothing.
enum class Better { kFirst, kSecond, kEqual, kUndecided };
Better BetterBy(const RunRow& a, const RunRow& b, const std::string& metric);

// One line of the comparison: a parameter or a result, each run's value as
// text, for losses the ratio of the second run's to the first's ("-" when
// either run diverged: its last finite losses rank nothing), and for
// evaluation metrics the better run.
struct ComparisonLine {
  std::string field;
  std::string a, b;
  std::string ratio;  // "" when not a loss, "-" when it cannot be computed
  bool parameter = false;
  // Evaluation metrics: "#INDEX" of the better run, "=" when equal, "-" when
  // undecided (BetterBy); "" on other lines.
  std::string better{};
};

// The lines every format shows: parameters that differ (all with
// options.all), then state, attempt, agent, step, duration, when either run
// has an evaluation every evaluation metric (with the better run) and the
// step it was measured at, the four losses (with ratio), the final image and
// the error.
std::vector<ComparisonLine> ComparisonLines(const Comparison& comparison, const CompareOptions& options);

// Names of the parameters whose values differ between the two runs.
std::vector<std::string> DifferingParameters(const Comparison& comparison);

// "run 12 (sweep 3 'demo' #4)".
std::string RunTitle(const CompareSide& side);

// The comparison in the requested format. InvalidArgument for an unknown
// format. JSON (stable, see docs/report-formats.md):
//   {"format_version", "runs": [run, run], "differing_params": [names],
//    "loss_ratio": {"total", "style", "content", "tv"} | null,
//    "eval_better": {"score", "style", ..., "color"} | null}
// where each run is a report run object plus "sweep": {"id", "name"};
// loss_ratio is null unless both runs have losses and neither diverged;
// eval_better is null unless both runs have an evaluation, and gives per
// metric the position in "runs" (0 or 1) of the better run, null when equal
// or when both diverged.
absl::StatusOr<std::string> RenderComparison(const Comparison& comparison, const CompareOptions& options);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_COMPARE_H_
