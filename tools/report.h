#ifndef STYLESWEEP_TOOLS_REPORT_H_
#define STYLESWEEP_TOOLS_REPORT_H_

// Text renderings of sweeps and runs for the CLI. Pure functions of the
// records, so they read the same whether the records came from the SQLite
// file or from a coordinator.

#include <map>
#include <string>
#include <vector>

#include "coordinator/store/store.h"

namespace stylesweep {

struct SweepView {
  SweepRecord sweep;
  std::vector<RunRecord> runs;            // may be empty in listings
  std::map<std::string, int> counts;      // runs by state name
};

std::map<std::string, int> CountByState(const std::vector<RunRecord>& runs);

// "4 runs: 3 SUCCEEDED, 1 RUNNING".
std::string CountsLine(const std::map<std::string, int>& counts);

// The report of one sweep: a header, the settings shared by every run, then
// one row per run with the parameters that differ between runs, the state,
// the final losses, the duration and the final image's path.
std::string RenderRunTable(const SweepView& view);

// One line per sweep with its run counts by state.
std::string RenderSweepList(const std::vector<SweepView>& sweeps);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_REPORT_H_
