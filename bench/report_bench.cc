// How long what users run on a large sweep takes: builds (or reuses) a
// database of one sweep with 10,000 runs and 10,000,000 loss rows (1,000
// steps each), then times each report query the CLI makes against it, through
// the same code as `stylesweep ... --db`, and prints a table.
//
//   report_bench [--db PATH] [--rebuild] [--runs N] [--steps N]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/run_params.h"
#include "coordinator/store/store.h"
#include "tools/compare.h"
#include "tools/html_report.h"
#include "tools/report.h"
#include "tools/status.h"
#include "tools/sweep_source.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kStartMs = 1700000000000;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

void Die(const absl::Status& status, const char* what) {
  std::fprintf(stderr, "report_bench: %s: %s\n", what, std::string(status.message()).c_str());
  std::exit(1);
}

// One sweep of `runs` runs (a grid of style_weight x learning_rate), each
// with `steps` loss rows, written through the store: the runs in one
// transaction, each run's losses in one more.
void Build(const std::string& path, int runs, int steps) {
  auto store = OpenSqliteStore(path);
  if (!store.ok()) Die(store.status(), "open");
  NewSweep sweep;
  sweep.name = "bench";
  sweep.source = "bench.yaml";
  sweep.yaml = "name: bench\n";
  sweep.spec_json = R"({"images": {}, "artifacts_dir": "/srv/stylesweep/artifacts"})";
  sweep.created_ms = kStartMs;
  sweep.draws = runs;
  std::vector<NewRun> new_runs;
  for (int i = 0; i < runs; ++i) {
    RunParams params;
    params.content = "sha256:" + std::string(64, 'a');
    params.style = {"sha256:" + std::string(64, 'b')};
    params.style_weight = 1e-3 * (1 + i / 100);
    params.learning_rate = 0.001 * (1 + i % 100);
    params.steps = steps - 1;
    new_runs.push_back(NewRun{i, params.ToJson().dump(), params.Hash(), ""});
  }
  auto sweep_id = (*store)->CreateSweep(sweep, new_runs);
  if (!sweep_id.ok()) Die(sweep_id.status(), "create sweep");
  std::vector<MetricRow> rows(steps);
  for (int i = 0; i < runs; ++i) {
    const int64_t start = kStartMs + 1000LL * i;
    auto lease = (*store)->ClaimNextRun(absl::StrCat("gpu-", i % 8), start, start + 60000);
    if (!lease.ok() || !lease->has_value()) Die(lease.status(), "claim");
    const double scale = 1000.0 * (1 + (i * 7919) % runs) / runs;
    for (int s = 0; s < steps; ++s) {
      const double total = scale * (1 + 100.0 / (1 + s));
      rows[s] = MetricRow{s, total * 0.5, total * 0.4, total * 0.1, total, 0.05};
    }
    if (absl::Status st = (*store)->AppendMetrics((*lease)->run.id, 1, rows); !st.ok()) Die(st, "metrics");
    const RunState state = i % 50 == 49 ? RunState::kFailed : RunState::kSucceeded;
    if (absl::Status st = (*store)->FinishRun((*lease)->run.id, 1, state, state == RunState::kFailed ? "oom" : "",
                                              start + 50 * steps);
        !st.ok()) {
      Die(st, "finish");
    }
    if ((i + 1) % 1000 == 0) std::fprintf(stderr, "  %d of %d runs written\n", i + 1, runs);
  }
}

struct Timing {
  std::string query;
  double seconds;
  std::string note;
};

}  // namespace
}  // namespace stylesweep

int main(int argc, char** argv) {
  using namespace stylesweep;
  std::string db = "report-bench.db";
  bool rebuild = false;
  int runs = 10000, steps = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "report_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--db") {
      db = value();
    } else if (arg == "--rebuild") {
      rebuild = true;
    } else if (arg == "--runs") {
      runs = std::atoi(value().c_str());
    } else if (arg == "--steps") {
      steps = std::atoi(value().c_str());
    } else {
      std::fprintf(stderr, "usage: report_bench [--db PATH] [--rebuild] [--runs N] [--steps N]\n");
      return 2;
    }
  }
  if (runs < 2 || steps < 2) {
    std::fprintf(stderr, "report_bench: --runs and --steps must be at least 2\n");
    return 2;
  }

  if (rebuild || !fs::exists(db)) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
    std::fprintf(stderr, "building %s: %d runs x %d loss rows...\n", db.c_str(), runs, steps);
    const auto start = Clock::now();
    Build(db, runs, steps);
    std::fprintf(stderr, "built in %.1f s\n", Seconds(start));
  } else {
    std::fprintf(stderr, "reusing %s (--rebuild to write it again)\n", db.c_str());
  }

  SourceOptions options;
  options.db = db;
  std::vector<Timing> timings;
  // Each query opens the database afresh, as each CLI command does.
  auto time = [&](const std::string& query, const std::function<std::string(SweepSource&)>& run) {
    const auto start = Clock::now();
    auto source = OpenSweepSource(options);
    if (!source.ok()) Die(source.status(), "open");
    const std::string note = run(**source);
    timings.push_back({query, Seconds(start), note});
  };
  auto must = [](auto result, const char* what) {
    if (!result.ok()) Die(result.status(), what);
    return *std::move(result);
  };
  auto report = [&](const ReportOptions& report_options) {
    return [&, report_options](SweepSource& source) {
      const SweepView view = must(source.GetSweep("bench"), "sweep");
      const std::string text = must(RenderReport(view, report_options), "report");
      return absl::StrCat(text.size() / 1024, " KiB of output");
    };
  };

  time("status (every sweep)", [&](SweepSource& source) {
    return absl::StrCat(RenderSweepList(must(source.ListSweeps(), "list")).size(), " bytes");
  });
  time("status bench", [&](SweepSource& source) {
    const SweepView view = must(source.GetSweep("bench"), "sweep");
    RenderSweepStatus(view, kStartMs + 1000LL * runs);
    return absl::StrCat(view.runs.size(), " runs");
  });
  time("report bench", report({}));
  ReportOptions sorted;
  sorted.sort = "loss/total";
  sorted.top = 20;
  time("report --sort loss/total --top 20", report(sorted));
  ReportOptions where;
  where.where = "style_weight >= 0.05 and state = SUCCEEDED and loss/total < 500";
  time("report --where '...'", report(where));
  ReportOptions grouped;
  grouped.group_by = "learning_rate";
  time("report --group-by learning_rate", report(grouped));
  ReportOptions json;
  json.format = "json";
  time("report --format json", report(json));
  ReportOptions csv;
  csv.format = "csv";
  time("report --format csv", report(csv));
  time("html data load, --sort loss/total --top 20", [&](SweepSource& source) {
    const HtmlReportData data = must(LoadHtmlReportData(source, "bench", sorted), "html data");
    size_t rows = 0;
    for (const auto& [id, metrics] : data.metrics) rows += metrics.size();
    return absl::StrCat(data.view.runs.size(), " runs, ", rows, " loss rows");
  });
  time("html report, --sort loss/total --top 20 (load + render)", [&](SweepSource& source) {
    const std::string html = RenderHtmlReport(must(LoadHtmlReportData(source, "bench", sorted), "html data"));
    return absl::StrCat(html.size() / 1024, " KiB of HTML (no images on disk)");
  });
  time("compare bench#17 bench#4242", [&](SweepSource& source) {
    const Comparison comparison = must(LoadComparison(source, "bench#17", "bench#4242"), "compare");
    must(RenderComparison(comparison, {}), "render");
    return absl::StrCat(comparison.a.metrics.size() + comparison.b.metrics.size(), " loss rows");
  });

  uintmax_t size = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const uintmax_t part = fs::file_size(db + suffix, ec);
    if (!ec) size += part;
  }
  std::printf("\n%d runs, %lld loss rows, database %.1f MiB (%s)\n\n", runs, static_cast<long long>(runs) * steps,
              size / 1048576.0, db.c_str());
  std::printf("%-58s %10s  %s\n", "query", "seconds", "");
  for (const Timing& t : timings) std::printf("%-58s %10.3f  %s\n", t.query.c_str(), t.seconds, t.note.c_str());
  return 0;
}
