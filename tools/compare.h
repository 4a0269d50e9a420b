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

// One line of the comparison: a parameter or a result, each run's value as
// text, and for losses the ratio of the second run's to the first's ("-"
// when either run diverged: its last finite losses rank nothing).
struct ComparisonLine {
  std::string field;
  std::string a, b;
  std::string ratio;  // "" when not a loss, "-" when it cannot be computed
  bool parameter = false;
};

// The lines every format shows: parameters that differ (all with
// options.all), then state, attempt, agent, step, duration, the four losses
// (with ratio), the final image and the error.
std::vector<ComparisonLine> ComparisonLines(const Comparison& comparison, const CompareOptions& options);

// Names of the parameters whose values differ between the two runs.
std::vector<std::string> DifferingParameters(const Comparison& comparison);

// "run 12 (sweep 3 'demo' #4)".
std::string RunTitle(const CompareSide& side);

// The comparison in the requested format. InvalidArgument for an unknown
// format. JSON (stable, see docs/report-formats.md):
//   {"format_version", "runs": [run, run], "differing_params": [names],
//    "loss_ratio": {"total", "style", "content", "tv"} | null}
// where each run is a report run object plus "sweep": {"id", "name"};
// loss_ratio is null unless both runs have losses and neither diverged.
absl::StatusOr<std::string> RenderComparison(const Comparison& comparison, const CompareOptions& options);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_COMPARE_H_
