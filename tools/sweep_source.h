#ifndef STYLESWEEP_TOOLS_SWEEP_SOURCE_H_
#define STYLESWEEP_TOOLS_SWEEP_SOURCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rpc/transport.h"
#include "tools/html_report.h"
#include "tools/report.h"

namespace stylesweep {

// Where the CLI reads sweeps from: the SQLite file itself (read-only, safe
// while a coordinator writes to it) or a coordinator over gRPC.
struct SourceOptions {
  std::string db;           // non-empty: read this file
  std::string coordinator;  // otherwise ask this coordinator
  ClientSecurity security;
  int64_t timeout_ms = 30000;
};

// One sweep (by id or name) with its runs.
absl::StatusOr<SweepView> LoadSweepView(const SourceOptions& source, const std::string& sweep);

// What an HTML report needs: the sweep, every run's losses and snapshots, and
// a reader for files under the coordinator's artifacts directory. Reads the
// database (--db) only: Unimplemented for a coordinator source.
absl::StatusOr<HtmlReportData> LoadHtmlReportData(const SourceOptions& source, const std::string& sweep);

// Every sweep with its run counts (runs left empty).
absl::StatusOr<std::vector<SweepView>> LoadSweepList(const SourceOptions& source);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SWEEP_SOURCE_H_
