#ifndef STYLESWEEP_TOOLS_SWEEP_SOURCE_H_
#define STYLESWEEP_TOOLS_SWEEP_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rpc/transport.h"
#include "tools/compare.h"
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

// One run with what `compare` and the HTML report show beyond its record.
struct RunDetails {
  SweepRecord sweep;                      // the run's sweep
  RunRecord run;
  std::vector<MetricRow> metrics;         // the current attempt's losses by step, when asked for
  std::vector<SnapshotRecord> snapshots;  // every attempt's, when asked for
};

// The reads every report command makes, the same answers from a database
// file or a coordinator. Unknown sweeps and runs are NotFound, naming what
// was asked for; a coordinator that cannot be reached is Unavailable, saying
// so. Not thread-safe.
class SweepSource {
 public:
  virtual ~SweepSource() = default;

  // Every sweep with its run counts by state (runs left empty, no yaml or
  // spec_json, diverged 0): cheap however many sweeps and runs are stored.
  virtual absl::StatusOr<std::vector<SweepView>> ListSweeps() = 0;
  // One sweep (by id or name) with all its runs, read a page at a time from
  // a coordinator.
  virtual absl::StatusOr<SweepView> GetSweep(const std::string& id_or_name) = 0;
  virtual absl::StatusOr<RunDetails> GetRun(int64_t run_id, bool with_metrics, bool with_snapshots) = 0;
  // Reads the sweep's files: snapshots by their relative path, input images
  // by their blob id. The reader stays valid as long as this source.
  virtual ArtifactReader Artifacts(const SweepRecord& sweep) = 0;
};

absl::StatusOr<std::unique_ptr<SweepSource>> OpenSweepSource(const SourceOptions& options);

// A run named by its id ("42") or by its sweep and index ("my-sweep#3",
// "7#0"). InvalidArgument for text that is neither.
absl::StatusOr<int64_t> ResolveRunId(SweepSource& source, const std::string& text);

// What an HTML report of the runs `options` selects (--where, --sort, --top)
// needs: their losses and snapshots, and a reader for the images.
absl::StatusOr<HtmlReportData> LoadHtmlReportData(SweepSource& source, const std::string& sweep,
                                                  const ReportOptions& options);

// Two runs, each by id or SWEEP#INDEX, with their losses, for `compare`.
absl::StatusOr<Comparison> LoadComparison(SweepSource& source, const std::string& first, const std::string& second);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SWEEP_SOURCE_H_
