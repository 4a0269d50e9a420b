#ifndef STYLESWEEP_TOOLS_RUN_QUERY_H_
#define STYLESWEEP_TOOLS_RUN_QUERY_H_

// Filtering, sorting and grouping of a sweep's runs for reports.
//
// Fields a query may name: `state`, `agent`, `run` (the run's index),
// `attempt`, `step`, `duration` (seconds), `loss/total`, `loss/style`,
// `loss/content`, `loss/tv`, `diverged` (true or false), the evaluation
// metrics (`eval/score`, `eval/style`, `eval/content`, `eval/tv`,
// `eval/style_norm`, `eval/content_norm`, `eval/tv_norm`, `eval/ssim`,
// `eval/color`; see common/evaluation.h), `eval_step`, and every run parameter
// by its key (`style_weight`, `style_layers`, ...).
//
// Losses and evaluation metrics are the *metrics*. A run's losses are
// weighted by its own weights, so they rank runs of one setting only; the
// evaluation metrics mean the same in every run of a sweep, and eval/score is
// what reports rank by unless told otherwise (DefaultMetric). A run without
// an evaluation (older agents, or none measured yet) has null for every
// eval/* field.
//
// A diverged run (its loss became NaN or infinite; it ended FAILED) is the
// worst result of its sweep: its losses and evaluation are the last finite
// ones, shown as they are, but no ranking by a metric puts it ahead of a run
// that did not diverge. Thread-compatible.
//
// NaN: a comparison with a NaN on either side is false, except `!=`, which is
// true (IEEE 754). A literal `nan` in a --where expression is refused with an
// error naming it (it would match nothing); `diverged = true` finds the runs
// whose loss became NaN.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "nlohmann/json.hpp"

namespace stylesweep {

// One run as reports see it: its record, its parameters with image ids
// replaced by the names the user wrote, and derived fields.
struct RunRow {
  RunRecord run;
  nlohmann::json params;  // object
  bool has_losses() const { return run.last_step >= 0; }
  bool has_eval() const { return run.has_eval(); }
  bool diverged() const { return run.diverged(); }
  // Wall time of the current attempt in seconds; nullopt while unfinished.
  std::optional<double> duration_s() const;
  // A field's value: a number, a string, an array, or null when it has none
  // (losses of a run that never reported, eval/* of a run not evaluated).
  nlohmann::json Field(const std::string& name) const;
};

// Builds rows from records. `image_names` maps blob ids to names as written.
std::vector<RunRow> MakeRunRows(const std::vector<RunRecord>& runs, const nlohmann::json& image_names);

// Every field name valid for these rows (for "did you mean").
std::vector<std::string> FieldNames(const std::vector<RunRow>& rows);

// A parsed --where expression, e.g.
//   style_weight >= 0.1 and state = SUCCEEDED
//   (loss/total < 500 or agent = gpu-1) and not state = FAILED
// Operators: = != < <= > >=, `and`, `or`, `not`, parentheses. Strings may be
// bare words or quoted. Comparisons with a missing value are false.
// Parentheses and `not` nest at most kMaxWhereDepth levels deep.
inline constexpr int kMaxWhereDepth = 200;

class RunFilter {
 public:
  // InvalidArgument saying where and what is wrong; unknown field names get
  // a "did you mean" from `fields`.
  static absl::StatusOr<RunFilter> Parse(const std::string& expression, const std::vector<std::string>& fields);
  bool Matches(const RunRow& row) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

struct SortKey {
  std::string field;
  bool descending = false;
};

// "loss/total" (ascending) or "-loss/total" (descending). Checks the field.
absl::StatusOr<SortKey> ParseSortKey(const std::string& text, const std::vector<std::string>& fields);

// Whether the field is one of the losses (loss/total, ...).
bool IsLossField(const std::string& name);
// Whether the field is a metric: a loss or an evaluation metric (eval/...).
// Rankings by a metric put diverged runs last.
bool IsMetricField(const std::string& name);
// Whether higher values of the field are the better ones: eval/ssim; every
// other metric is best at its lowest.
bool HigherIsBetter(const std::string& name);

// The metric to rank `rows` by when the user names none: eval/score when any
// of them has an evaluation, else loss/total (runs from agents that do not
// evaluate).
std::string DefaultMetric(const std::vector<RunRow>& rows);

// The best of `rows` by `metric` in its natural direction (HigherIsBetter):
// a SUCCEEDED run that did not diverge and has a value; the first of equals.
// nullptr when there is none.
const RunRow* BestRow(const std::vector<RunRow>& rows, const std::string& metric);

// The Pareto front reports show: eval/style and eval/content, lower better
// on both (common/pareto.h). Its candidates are the rows with an evaluation
// that did not diverge.
inline constexpr const char* kParetoObjectives[] = {"eval/style", "eval/content"};
bool IsParetoCandidate(const RunRow& row);
// Indexes into `rows` of the candidates no other candidate dominates, in
// ascending order. Equal points are all on the front.
std::vector<size_t> ParetoFrontRows(const std::vector<RunRow>& rows);

// Stable sort; rows without a value for the field go last either way. By a
// metric, diverged runs come after every run with a value, whatever the
// direction (and before the runs without one).
void SortRows(std::vector<RunRow>& rows, const SortKey& key);

// One group of --group-by: the runs sharing a value of the field, with
// statistics of the metric over the runs that have it. When the metric is a
// loss or an evaluation metric, diverged runs count apart: never the best,
// outside the mean.
struct RunGroup {
  nlohmann::json value;
  int runs = 0;
  int with_metric = 0;
  int diverged = 0;
  double best = 0, mean = 0, stddev = 0;
  int64_t best_run_index = -1;
};

// Groups in order of first appearance; `metric` is a field such as
// "eval/score"; best is the maximum when `maximize`, the minimum when not,
// and by default the metric's natural direction (HigherIsBetter).
std::vector<RunGroup> GroupRows(const std::vector<RunRow>& rows, const std::string& field, const std::string& metric,
                                std::optional<bool> maximize = std::nullopt);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_RUN_QUERY_H_
