// Fuzzes the query language of `stylesweep report`: the input is a --where
// expression, parsed against the fields of a fixed set of runs and evaluated
// on each; the same text is also tried as a --sort key and a --group-by
// field. The runs cover what the language compares: numbers, words, lists,
// runs without losses, a diverged run and a NaN loss.
//
// Besides crashes, it checks that `not (E)` parses whenever E does (short of
// the nesting limit) and matches exactly the runs E does not.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "tools/run_query.h"

namespace stylesweep {
namespace {

std::vector<RunRow> FixedRows() {
  std::vector<RunRecord> runs;
  const RunState states[] = {RunState::kSucceeded, RunState::kSucceeded, RunState::kFailed, RunState::kQueued,
                             RunState::kRunning,   RunState::kFailed,    RunState::kPruned};
  for (int i = 0; i < 7; ++i) {
    RunRecord run;
    run.id = i + 1;
    run.index = i;
    run.state = states[i];
    run.attempt = i == 3 ? 0 : 1 + i % 2;
    run.agent = i == 3 ? "" : (i % 2 == 0 ? "gpu-0" : "gpu 1");
    run.params_json = nlohmann::json{{"style_weight", i == 1 ? 0.0 : 1e-3 * (i + 1)},
                                     {"steps", 100 * (i + 1)},
                                     {"style_layers", i < 3 ? std::vector<std::string>{"block1_conv1"}
                                                            : std::vector<std::string>{"block1_conv1", "block5_conv1"}},
                                     {"content", "sha256:aa"},
                                     {"style", {"sha256:bb", "sha256:cc"}},
                                     {"optimizer", i % 2 == 0 ? "adam" : "lbfgs"},
                                     {"preserve_colors", i == 4}}
                          .dump();
    if (states[i] != RunState::kQueued) {
      run.last_step = 50 * i;
      run.total_loss = 1000.0 / (i + 1);
      run.style_loss = 0.5 * run.total_loss;
      run.content_loss = -0.0;
      run.tv_loss = 1e300;
      run.started_ms = 1000;
      if (states[i] != RunState::kRunning) run.finished_ms = 1000 + 250 * i;
    }
    runs.push_back(run);
  }
  runs[2].diverged_step = 100;                                      // FAILED: the loss became NaN
  runs[5].total_loss = std::numeric_limits<double>::quiet_NaN();  // as a broken store might hold
  runs[6].params_json = "not json";                               // unreadable: no parameters
  return MakeRunRows(runs, nlohmann::json{{"sha256:aa", "images/cat.png"}, {"sha256:bb", "starry night.jpg"}});
}

const std::vector<RunRow>& Rows() {
  static const auto* rows = new std::vector<RunRow>(FixedRows());
  return *rows;
}

const std::vector<std::string>& Fields() {
  static const auto* fields = new std::vector<std::string>(FieldNames(Rows()));
  return *fields;
}

void Where(const std::string& expression) {
  auto filter = RunFilter::Parse(expression, Fields());
  if (!filter.ok()) return;
  auto negated = RunFilter::Parse("not (" + expression + ")", Fields());
  if (!negated.ok()) {
    // Only the two levels "not (" adds may make it fail.
    if (std::string(negated.status().message()).find("nested deeper than") == std::string::npos) abort();
    return;
  }
  for (const RunRow& row : Rows()) {
    if (filter->Matches(row) == negated->Matches(row)) abort();
  }
}

void SortAndGroup(const std::string& field) {
  auto key = ParseSortKey(field, Fields());
  if (!key.ok()) return;
  std::vector<RunRow> rows = Rows();
  SortRows(rows, *key);
  if (rows.size() != Rows().size()) abort();
  for (const std::string& metric : {"loss/total", "loss/style", "run"}) {
    (void)GroupRows(Rows(), key->field, metric, key->descending);
  }
}

}  // namespace
}  // namespace stylesweep

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  stylesweep::Where(text);
  stylesweep::SortAndGroup(text);
  return 0;
}
