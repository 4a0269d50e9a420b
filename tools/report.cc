#include "tools/report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/evaluation.h"
#include "nlohmann/json.hpp"
#include "coordinator/scheduler/early_stop.h"
#include "tools/run_query.h"
#include "tools/terminal_text.h"

namespace stylesweep {

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

namespace {

// A value for a table cell: image paths by file name, lists joined.
std::string FormatValue(const nlohmann::json& v, const std::string& list_separator = ",") {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return FormatNumber(v.get<double>());
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : v) parts.push_back(FormatValue(item, list_separator));
    return absl::StrJoin(parts, list_separator);
  }
  return v.dump();
}

std::string ShortImageName(const nlohmann::json& v) {
  if (v.is_string()) return std::filesystem::path(v.get<std::string>()).filename().string();
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : v) parts.push_back(ShortImageName(item));
    return absl::StrJoin(parts, ",");
  }
  return FormatValue(v);
}

}  // namespace

std::string FormatParameter(const std::string& key, const nlohmann::json& v) {
  return key == "content" || key == "style" ? ShortImageName(v) : FormatValue(v);
}

std::string FormatDuration(const RunRow& row) {
  if (row.run.started_ms == 0) return "-";
  auto d = row.duration_s();
  if (!d) return "...";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", *d);
  return buf;
}

std::string RenderColumns(const std::vector<std::vector<std::string>>& cells) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : cells) {
    rows.emplace_back();
    for (const std::string& cell : row) rows.back().push_back(ForTerminal(cell));
  }
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string MarkdownText(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '|': out += "\\|"; break;
      case '`': out += "\\`"; break;
      case '\r':
        if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
        out += ' ';
        break;
      case '\n': out += ' '; break;
      default: out += text[i];
    }
  }
  return out;
}

std::string RenderMarkdownTable(const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<std::string> cells;
    for (const std::string& cell : rows[r]) cells.push_back(MarkdownText(cell));
    out += absl::StrCat("| ", absl::StrJoin(cells, " | "), " |\n");
    if (r == 0) out += absl::StrCat("|", absl::StrJoin(std::vector<std::string>(rows[r].size(), "---"), "|"), "|\n");
  }
  return out;
}

namespace {

// A parameter for CSV: numbers in full (a script reads back what was run),
// lists joined by ';'.
std::string CsvValue(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : v) parts.push_back(CsvValue(item));
    return absl::StrJoin(parts, ";");
  }
  return v.dump();
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

// A text cell (a name, an error, a path, a string parameter) that a
// spreadsheet would read as a formula (= + - @, or a leading tab or CR) is
// quoted with a ' in front, as OWASP advises against CSV injection. Numbers
// go through CsvField alone, so -0.5 stays a number.
std::string CsvTextField(const std::string& s) {
  if (s.empty() || std::string_view("=+-@\t\r").find(s.front()) == std::string_view::npos) return CsvField(s);
  return absl::StrCat("\"'", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

// A parameter's CSV cell: strings and lists are text, numbers are not.
std::string CsvParameterField(const nlohmann::json& v) {
  return v.is_string() || v.is_array() ? CsvTextField(CsvValue(v)) : CsvField(CsvValue(v));
}

struct Context {
  nlohmann::json spec;
  nlohmann::json image_names = nlohmann::json::object();
  std::string artifacts;
};

Context ReadContext(const SweepView& view) {
  Context c;
  c.spec = nlohmann::json::parse(view.sweep.spec_json, nullptr, false);
  if (c.spec.is_object()) {
    if (c.spec.contains("images") && c.spec["images"].is_object()) c.image_names = c.spec["images"];
    if (c.spec.contains("artifacts_dir") && c.spec["artifacts_dir"].is_string()) c.artifacts = c.spec["artifacts_dir"];
  }
  return c;
}

// Parameters whose value differs between runs, and those every run shares.
void SplitParameters(const std::vector<RunRow>& rows, std::vector<std::string>& varying,
                     std::vector<std::string>& shared) {
  if (rows.empty()) return;
  for (const auto& [key, value] : rows[0].params.items()) {
    bool same = true;
    for (const RunRow& row : rows) same = same && row.params.contains(key) && row.params[key] == value;
    (same ? shared : varying).push_back(key);
  }
}

}  // namespace

nlohmann::json RunToJson(const RunRow& row, const std::string& artifacts) {
  nlohmann::json loss = nullptr;
  if (row.has_losses()) {
    loss = {{"total", row.run.total_loss},
            {"style", row.run.style_loss},
            {"content", row.run.content_loss},
            {"tv", row.run.tv_loss}};
  }
  nlohmann::json eval = nullptr;
  if (row.has_eval()) {
    eval = nlohmann::json::object();
    for (const EvalMetricDef& def : EvalMetricDefs()) {
      eval[std::string(def.name).substr(5)] = *EvalMetricValue(row.run.eval, def.name);
    }
  }
  auto duration = row.duration_s();
  nlohmann::json image = nullptr;
  if (!row.run.final_snapshot.empty()) {
    image = artifacts.empty() ? row.run.final_snapshot
                              : (std::filesystem::path(artifacts) / row.run.final_snapshot).string();
  }
  return {{"id", row.run.id},
          {"index", row.run.index},
          {"state", std::string(RunStateName(row.run.state))},
          {"attempt", row.run.attempt},
          {"agent", row.run.agent},
          {"params", row.params},
          {"step", row.has_losses() ? nlohmann::json(row.run.last_step) : nlohmann::json()},
          {"loss", loss},
          {"eval_step", row.has_eval() ? nlohmann::json(row.run.eval_step) : nlohmann::json()},
          {"eval", eval},
          {"diverged", row.diverged()},
          {"diverged_step", row.diverged() ? nlohmann::json(row.run.diverged_step) : nlohmann::json()},
          {"duration_s", duration ? nlohmann::json(*duration) : nlohmann::json()},
          {"image", image},
          {"error", row.run.error}};
}

std::string SweepArtifactsDir(const SweepRecord& sweep) {
  const nlohmann::json spec = nlohmann::json::parse(sweep.spec_json, nullptr, false);
  return spec.is_object() && spec.contains("artifacts_dir") && spec["artifacts_dir"].is_string()
             ? spec["artifacts_dir"].get<std::string>()
             : "";
}

namespace {

std::vector<std::vector<std::string>> GroupTable(const std::vector<RunGroup>& groups, const std::string& field,
                                                 const std::string& metric) {
  // Diverged runs are left out of the statistics; a column counts them
  // when there are any.
  const bool any_diverged =
      std::any_of(groups.begin(), groups.end(), [](const RunGroup& g) { return g.diverged > 0; });
  std::vector<std::vector<std::string>> table = {
      {field, "runs", absl::StrCat("best ", metric), "mean", "stddev", "best run"}};
  if (any_diverged) table[0].push_back("diverged");
  for (const RunGroup& g : groups) {
    const bool has = g.with_metric > 0;
    table.push_back({FormatParameter(field, g.value), absl::StrCat(g.runs), has ? FormatNumber(g.best) : "-",
                     has ? FormatNumber(g.mean) : "-", has && g.with_metric > 1 ? FormatNumber(g.stddev) : "-",
                     has ? absl::StrCat("#", g.best_run_index) : "-"});
    if (any_diverged) table.back().push_back(absl::StrCat(g.diverged));
  }
  return table;
}

}  // namespace

std::map<std::string, int> CountByState(const std::vector<RunRecord>& runs) {
  std::map<std::string, int> counts;
  for (const RunRecord& run : runs) ++counts[std::string(RunStateName(run.state))];
  return counts;
}

int CountDiverged(const std::vector<RunRecord>& runs) {
  return static_cast<int>(std::count_if(runs.begin(), runs.end(), [](const RunRecord& r) { return r.diverged(); }));
}

std::string CountsLine(const std::map<std::string, int>& counts, int diverged) {
  int total = 0;
  for (const auto& [state, n] : counts) total += n;
  std::vector<std::string> parts;
  for (RunState s : {RunState::kSucceeded, RunState::kRunning, RunState::kQueued, RunState::kFailed, RunState::kLost,
                     RunState::kCancelled, RunState::kPruned}) {
    auto it = counts.find(std::string(RunStateName(s)));
    if (it == counts.end()) continue;
    parts.push_back(absl::StrCat(it->second, " ", it->first,
                                 s == RunState::kFailed && diverged > 0 ? absl::StrCat(" (", diverged, " diverged)")
                                                                        : ""));
  }
  return absl::StrCat(total, total == 1 ? " run" : " runs",
                      parts.empty() ? "" : absl::StrCat(": ", absl::StrJoin(parts, ", ")));
}

std::string SweepCountsLine(const SweepView& view) {
  return view.counts.empty() ? CountsLine(CountByState(view.runs), CountDiverged(view.runs))
                             : CountsLine(view.counts, view.diverged);
}

namespace {

// The runs a report shows, and what the report says about how it chose them.
struct Selection {
  std::vector<RunRow> rows;
  std::vector<std::string> fields;  // every field name of the sweep's runs
  std::string default_metric;       // DefaultMetric of every run of the sweep
  // --pareto: the runs --where kept, how many of them are candidates (an
  // evaluation, not diverged), and how many are on the front.
  size_t pareto_of = 0, pareto_candidates = 0, pareto_front = 0;
};

absl::StatusOr<Selection> SelectRows(const SweepView& view, const ReportOptions& options, const Context& context) {
  Selection selection;
  std::vector<RunRow>& rows = selection.rows;
  rows = MakeRunRows(view.runs, context.image_names);
  selection.fields = FieldNames(rows);
  selection.default_metric = DefaultMetric(rows);
  const std::vector<std::string>& fields = selection.fields;
  if (!options.where.empty()) {
    auto filter = RunFilter::Parse(options.where, fields);
    if (!filter.ok()) return filter.status();
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](const RunRow& r) { return !filter->Matches(r); }),
               rows.end());
  }
  if (options.pareto) {
    selection.pareto_of = rows.size();
    selection.pareto_candidates =
        static_cast<size_t>(std::count_if(rows.begin(), rows.end(), IsParetoCandidate));
    if (selection.pareto_candidates == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--pareto: none of the ", rows.size(), rows.size() == 1 ? " run" : " runs",
          options.where.empty() ? " of sweep " : " --where selects in sweep ", view.sweep.id, " '",
          view.sweep.name, "' has an evaluation (eval/style, eval/content) and did not diverge, so there is no ",
          "Pareto front to show; agents evaluate a run at its snapshots and its last step, and runs from agents "
          "that do not evaluate have none"));
    }
    std::vector<RunRow> front;
    for (size_t i : ParetoFrontRows(rows)) front.push_back(std::move(rows[i]));
    rows = std::move(front);
    selection.pareto_front = rows.size();
  }
  if (!options.sort.empty()) {
    auto key = ParseSortKey(options.sort, fields);
    if (!key.ok()) return key.status();
    SortRows(rows, *key);
  }
  if (options.top < 0) return absl::InvalidArgumentError("--top must be positive");
  if (options.top > 0 && rows.size() > static_cast<size_t>(options.top)) rows.resize(options.top);
  return selection;
}

}  // namespace

absl::StatusOr<std::vector<RunRecord>> SelectRuns(const SweepView& view, const ReportOptions& options) {
  auto selection = SelectRows(view, options, ReadContext(view));
  if (!selection.ok()) return selection.status();
  std::vector<RunRecord> runs;
  for (RunRow& row : selection->rows) runs.push_back(std::move(row.run));
  return runs;
}

const std::vector<std::string>& ShownEvalMetrics() {
  static const std::vector<std::string> shown = {"eval/score", "eval/style", "eval/content", "eval/ssim",
                                                 "eval/color"};
  return shown;
}

std::string MetricCell(const RunRow& row, const std::string& field) {
  const nlohmann::json value = row.Field(field);
  if (value.is_null()) return "-";
  return value.is_number() ? FormatNumber(value.get<double>()) : FormatValue(value);
}

absl::StatusOr<std::string> RenderReport(const SweepView& view, const ReportOptions& options) {
  const Context context = ReadContext(view);
  auto selected = SelectRows(view, options, context);
  if (!selected.ok()) return selected.status();
  const std::vector<std::string> fields = selected->fields;
  std::vector<RunRow> rows = std::move(selected->rows);
  const std::string metric = options.metric.empty() ? selected->default_metric : options.metric;

  std::vector<RunGroup> groups;
  if (!options.group_by.empty()) {
    if (std::find(fields.begin(), fields.end(), options.group_by) == fields.end()) {
      return ParseSortKey(options.group_by, fields).status();  // the same "unknown field" message
    }
    if (std::find(fields.begin(), fields.end(), metric) == fields.end()) {
      return ParseSortKey(metric, fields).status();
    }
    groups = GroupRows(rows, options.group_by, metric);
  }

  std::vector<std::string> varying, shared;
  SplitParameters(rows, varying, shared);
  const ComputeSaved compute = CountSteps(view.runs);

  if (options.format == "json") {
    nlohmann::json runs = nlohmann::json::array();
    for (const RunRow& row : rows) runs.push_back(RunToJson(row, context.artifacts));
    nlohmann::json out = {{"format_version", kReportFormatVersion},
                          {"sweep",
                           {{"id", view.sweep.id},
                            {"name", view.sweep.name},
                            {"method", view.sweep.method},
                            {"source", view.sweep.source},
                            {"artifacts_dir", context.artifacts},
                            {"counts", CountByState(view.runs)},
                            {"diverged", CountDiverged(view.runs)},
                            {"steps_run", compute.steps_run},
                            {"steps_saved", compute.steps_saved}}},
                          {"runs", runs}};
    if (!options.group_by.empty()) {
      nlohmann::json g = nlohmann::json::array();
      for (const RunGroup& group : groups) {
        const bool has = group.with_metric > 0;
        g.push_back({{"value", group.value},
                     {"runs", group.runs},
                     {"with_metric", group.with_metric},
                     {"diverged", group.diverged},
                     {"best", has ? nlohmann::json(group.best) : nlohmann::json()},
                     {"mean", has ? nlohmann::json(group.mean) : nlohmann::json()},
                     {"stddev", has ? nlohmann::json(group.stddev) : nlohmann::json()},
                     {"best_run", has ? nlohmann::json(group.best_run_index) : nlohmann::json()}});
      }
      out["group_by"] = options.group_by;
      out["metric"] = metric;
      out["groups"] = g;
    }
    if (options.pareto) {
      out["pareto"] = {{"objectives", std::vector<std::string>(std::begin(kParetoObjectives), std::end(kParetoObjectives))},
                       {"front", selected->pareto_front},
                       {"of", selected->pareto_of},
                       {"candidates", selected->pareto_candidates}};
    }
    return out.dump(2) + "\n";
  }

  if (options.format == "csv") {
    std::vector<std::string> params;
    if (!rows.empty()) {
      for (const auto& [key, value] : rows[0].params.items()) params.push_back(key);
    }
    std::vector<std::string> header = {"index", "state", "attempt", "agent"};
    header.insert(header.end(), params.begin(), params.end());
    for (const char* h : {"step", "loss_total", "loss_style", "loss_content", "loss_tv", "duration_s", "image", "error",
                          "diverged_step", "eval_step"}) {
      header.push_back(h);
    }
    for (const EvalMetricDef& def : EvalMetricDefs()) header.push_back(absl::StrCat("eval_", def.name + 5));
    for (std::string& name : header) name = CsvTextField(name);
    std::string out = absl::StrJoin(header, ",") + "\n";
    for (const RunRow& row : rows) {
      const nlohmann::json j = RunToJson(row, context.artifacts);
      std::vector<std::string> cells = {absl::StrCat(row.run.index), std::string(RunStateName(row.run.state)),
                                        absl::StrCat(row.run.attempt), CsvTextField(row.run.agent)};
      for (const std::string& key : params) {
        cells.push_back(row.params.contains(key) ? CsvParameterField(row.params[key]) : "");
      }
      auto number = [](const nlohmann::json& v) { return v.is_null() ? std::string() : v.dump(); };
      cells.push_back(number(j["step"]));
      for (const char* k : {"total", "style", "content", "tv"}) {
        cells.push_back(j["loss"].is_null() ? "" : number(j["loss"][k]));
      }
      cells.push_back(number(j["duration_s"]));
      cells.push_back(CsvTextField(j["image"].is_null() ? "" : j["image"].get<std::string>()));
      cells.push_back(CsvTextField(row.run.error));
      cells.push_back(number(j["diverged_step"]));
      cells.push_back(number(j["eval_step"]));
      for (const EvalMetricDef& def : EvalMetricDefs()) {
        cells.push_back(j["eval"].is_null() ? "" : number(j["eval"][def.name + 5]));
      }
      out += absl::StrJoin(cells, ",") + "\n";
    }
    return out;
  }

  if (options.format != "table" && options.format != "markdown") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown report format '", options.format, "'; use table, csv, json, markdown or html"));
  }
  const bool markdown = options.format == "markdown";

  // Text from the sweep file or a client, for the prose around the table.
  auto text = [markdown](std::string_view s) { return markdown ? MarkdownText(s) : ForTerminal(s); };
  std::string out = absl::StrCat(markdown ? "## " : "", "sweep ", view.sweep.id, " '", text(view.sweep.name), "' (",
                                 text(view.sweep.method), ", ", text(view.sweep.source), "): ",
                                 CountsLine(CountByState(view.runs), CountDiverged(view.runs)),
                                 "\n");
  if (!shared.empty() && !rows.empty()) {
    std::vector<std::string> settings;
    for (const auto& key : shared) {
      const nlohmann::json& value = rows[0].params[key];
      // An unused option: no blend weights, or no weights file (a random network).
      if ((value.is_array() && value.empty()) || (value.is_string() && value.get_ref<const std::string&>().empty())) {
        continue;
      }
      settings.push_back(absl::StrCat(key, "=", FormatParameter(key, value)));
    }
    out += absl::StrCat(markdown ? "\nshared: " : "shared: ", text(absl::StrJoin(settings, " ")), "\n");
  }
  if (compute.steps_saved > 0) {
    out += absl::StrCat(markdown ? "\n" : "", "early termination saved ", compute.steps_saved, " of ",
                        compute.steps_run + compute.steps_saved, " steps\n");
  }
  if (!context.artifacts.empty()) out += absl::StrCat(markdown ? "\n" : "", "images under ", text(context.artifacts), "\n");
  if (options.pareto) {
    out += absl::StrCat(markdown ? "\n" : "", selected->pareto_front, " of ", selected->pareto_of,
                        selected->pareto_of == 1 ? " run" : " runs", " on the Pareto front of ",
                        absl::StrJoin(kParetoObjectives, " and "),
                        selected->pareto_candidates < selected->pareto_of
                            ? absl::StrCat(" (", selected->pareto_candidates,
                                           " with an evaluation and not diverged)")
                            : "",
                        "\n");
    if (rows.size() != selected->pareto_front) {
      out += absl::StrCat(markdown ? "\n" : "", "showing ", rows.size(), " of them\n");
    }
  } else if (rows.size() != view.runs.size()) {
    out += absl::StrCat(markdown ? "\n" : "", "showing ", rows.size(), " of ", view.runs.size(), " runs\n");
  }
  out += "\n";

  if (!options.group_by.empty()) {
    const auto table = GroupTable(groups, options.group_by, metric);
    return out + (markdown ? RenderMarkdownTable(table) : RenderColumns(table));
  }

  // The evaluation metrics come first: they rank runs across the sweep; the
  // losses, weighted by each run's own weights, do not.
  const bool show_eval = std::any_of(rows.begin(), rows.end(), [](const RunRow& r) { return r.has_eval(); });
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> header = {"run"};
  for (const auto& key : varying) header.push_back(key);
  header.push_back("state");
  header.push_back("step");
  if (show_eval) header.insert(header.end(), ShownEvalMetrics().begin(), ShownEvalMetrics().end());
  for (const char* h : {"loss/total", "loss/style", "loss/content", "loss/tv", "time", "image"}) header.push_back(h);
  table.push_back(header);
  for (const RunRow& row : rows) {
    std::vector<std::string> cells = {absl::StrCat("#", row.run.index)};
    for (const auto& key : varying) cells.push_back(row.params.contains(key) ? FormatParameter(key, row.params[key]) : "-");
    cells.push_back(StateCell(row));
    const bool has_losses = row.has_losses();
    cells.push_back(has_losses ? absl::StrCat(row.run.last_step) : "-");
    if (show_eval) {
      for (const std::string& name : ShownEvalMetrics()) cells.push_back(MetricCell(row, name));
    }
    for (double v : {row.run.total_loss, row.run.style_loss, row.run.content_loss, row.run.tv_loss}) {
      cells.push_back(has_losses ? FormatNumber(v) : "-");
    }
    cells.push_back(FormatDuration(row));
    cells.push_back(row.run.final_snapshot.empty() ? (row.run.error.empty() ? "-" : "error: " + row.run.error)
                                                   : row.run.final_snapshot);
    table.push_back(std::move(cells));
  }
  return out + (markdown ? RenderMarkdownTable(table) : RenderColumns(table));
}

std::string StateCell(const RunRow& row) {
  std::string state(RunStateName(row.run.state));
  return row.diverged() ? absl::StrCat(state, ", diverged at step ", row.run.diverged_step) : state;
}

std::string RenderRunTable(const SweepView& view) {
  auto text = RenderReport(view, ReportOptions{});
  return text.ok() ? *text : std::string(text.status().message());
}

std::string RenderSweepList(const std::vector<SweepView>& sweeps) {
  if (sweeps.empty()) return "no sweeps yet: submit one with `stylesweep submit SWEEP.yaml`\n";
  std::vector<std::vector<std::string>> rows = {{"id", "name", "method", "source", "runs"}};
  for (const SweepView& v : sweeps) {
    rows.push_back({absl::StrCat(v.sweep.id), v.sweep.name, v.sweep.method, v.sweep.source,
                    absl::StrCat(CountsLine(v.counts), v.sweep.paused ? " (paused)" : "")});
  }
  return RenderColumns(rows);
}

}  // namespace stylesweep
