#ifndef STYLESWEEP_TOOLS_HTML_REPORT_H_
#define STYLESWEEP_TOOLS_HTML_REPORT_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "tools/compare.h"
#include "tools/report.h"

namespace stylesweep {

// What an HTML report shows beyond the runs themselves.
struct HtmlReportData {
  SweepView view;
  std::map<int64_t, std::vector<MetricRow>> metrics;         // by run id: the current attempt's losses
  std::map<int64_t, std::vector<SnapshotRecord>> snapshots;  // by run id
  // Reads a file under the artifacts directory (a relative path, or a blob
  // id for the input images); errors leave a placeholder in the page.
  ArtifactReader read_artifact;
};

// One self-contained HTML page (images inlined, loss curves as inline SVG, no
// scripts or outside resources) that can be mailed: the content and style
// images, a contact sheet of every run's final image labelled with its
// parameters and loss (rows x columns when the sweep varies two parameters),
// loss curves on a log scale with the best run highlighted, snapshots over
// steps of the best runs, and the table of runs.
std::string RenderHtmlReport(const HtmlReportData& data);

// `stylesweep compare --format html`: one self-contained page with both final
// images side by side, both loss curves and the comparison table.
std::string RenderHtmlComparison(const Comparison& comparison, const CompareOptions& options);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_HTML_REPORT_H_
