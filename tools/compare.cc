#include "tools/compare.h"

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/evaluation.h"
#include "tools/html_report.h"
#include "tools/run_query.h"
#include "tools/terminal_text.h"

namespace stylesweep {
namespace {

nlohmann::json ImageNames(const SweepRecord& sweep) {
  const nlohmann::json spec = nlohmann::json::parse(sweep.spec_json, nullptr, false);
  return spec.is_object() && spec.contains("images") && spec["images"].is_object() ? spec["images"]
                                                                                   : nlohmann::json::object();
}

RunRow Row(const CompareSide& side) { return MakeRunRows({side.run}, ImageNames(side.sweep)).front(); }

std::string ImagePath(const CompareSide& side) {
  if (side.run.final_snapshot.empty()) return "-";
  const std::string root = SweepArtifactsDir(side.sweep);
  return root.empty() ? side.run.final_snapshot : (std::filesystem::path(root) / side.run.final_snapshot).string();
}

// Whether the two runs' losses say which is better: both have some, and
// neither diverged (a diverged run's last finite losses say nothing of
// where it ended).
bool Comparable(const RunRow& a, const RunRow& b) {
  return a.has_losses() && b.has_losses() && !a.diverged() && !b.diverged();
}

// b / a, or nullopt when the runs are not comparable or a is 0.
std::optional<double> Ratio(const RunRow& a, const RunRow& b, double RunRecord::*loss) {
  if (!Comparable(a, b) || a.run.*loss == 0) return std::nullopt;
  return b.run.*loss / a.run.*loss;
}

constexpr struct {
  const char* name;
  double RunRecord::*member;
} kLosses[] = {{"total", &RunRecord::total_loss},
               {"style", &RunRecord::style_loss},
               {"content", &RunRecord::content_loss},
               {"tv", &RunRecord::tv_loss}};

}  // namespace

Better BetterBy(const RunRow& a, const RunRow& b, const std::string& metric) {
  const nlohmann::json x = a.Field(metric), y = b.Field(metric);
  if (!x.is_number() || !y.is_number()) return Better::kUndecided;
  if (a.diverged() || b.diverged()) {
    if (a.diverged() && b.diverged()) return Better::kUndecided;
    return a.diverged() ? Better::kSecond : Better::kFirst;
  }
  const double u = x.get<double>(), v = y.get<double>();
  if (u == v) return Better::kEqual;
  if (!(u < v) && !(u > v)) return Better::kUndecided;  // a NaN
  return (u < v) != HigherIsBetter(metric) ? Better::kFirst : Better::kSecond;
}

std::string RunTitle(const CompareSide& side) {
  return absl::StrCat("run ", side.run.id, " (sweep ", side.sweep.id, " '", side.sweep.name, "' #", side.run.index,
                      ")");
}

std::vector<std::string> DifferingParameters(const Comparison& comparison) {
  const RunRow a = Row(comparison.a), b = Row(comparison.b);
  std::vector<std::string> names;
  for (const auto& [key, value] : a.params.items()) {
    if (!b.params.contains(key) || b.params[key] != value) names.push_back(key);
  }
  for (const auto& [key, value] : b.params.items()) {
    if (!a.params.contains(key)) names.push_back(key);
  }
  return names;
}

std::vector<ComparisonLine> ComparisonLines(const Comparison& comparison, const CompareOptions& options) {
  const RunRow a = Row(comparison.a), b = Row(comparison.b);
  std::vector<ComparisonLine> lines;
  const std::vector<std::string> differing = DifferingParameters(comparison);
  std::vector<std::string> keys = differing;
  if (options.all) {
    keys.clear();
    for (const auto& [key, value] : a.params.items()) keys.push_back(key);
    for (const auto& [key, value] : b.params.items()) {
      if (!a.params.contains(key)) keys.push_back(key);
    }
  }
  for (const std::string& key : keys) {
    auto text = [&](const RunRow& row) {
      return row.params.contains(key) ? FormatParameter(key, row.params[key]) : std::string("-");
    };
    lines.push_back({key, text(a), text(b), "", true});
  }
  lines.push_back({"state", StateCell(a), StateCell(b), ""});
  lines.push_back({"attempt", absl::StrCat(a.run.attempt), absl::StrCat(b.run.attempt), ""});
  lines.push_back({"agent", a.run.agent.empty() ? "-" : a.run.agent, b.run.agent.empty() ? "-" : b.run.agent, ""});
  auto step = [](const RunRow& row) { return row.has_losses() ? absl::StrCat(row.run.last_step) : std::string("-"); };
  lines.push_back({"step", step(a), step(b), ""});
  lines.push_back({"duration", FormatDuration(a), FormatDuration(b), ""});
  if (a.has_eval() || b.has_eval()) {
    for (const std::string& name : EvalMetricNames()) {
      std::string better = "-";
      switch (BetterBy(a, b, name)) {
        case Better::kFirst: better = absl::StrCat("#", a.run.index); break;
        case Better::kSecond: better = absl::StrCat("#", b.run.index); break;
        case Better::kEqual: better = "="; break;
        case Better::kUndecided: break;
      }
      lines.push_back({name, MetricCell(a, name), MetricCell(b, name), "", false, better});
    }
    lines.push_back({"eval_step", MetricCell(a, "eval_step"), MetricCell(b, "eval_step"), ""});
  }
  for (const auto& loss : kLosses) {
    auto value = [&](const RunRow& row) { return row.has_losses() ? FormatNumber(row.run.*loss.member) : "-"; };
    const auto ratio = Ratio(a, b, loss.member);
    lines.push_back({absl::StrCat("loss/", loss.name), value(a), value(b),
                     ratio ? absl::StrCat(FormatNumber(*ratio), "x") : "-"});
  }
  lines.push_back({"image", ImagePath(comparison.a), ImagePath(comparison.b), ""});
  if (!a.run.error.empty() || !b.run.error.empty()) {
    lines.push_back({"error", a.run.error.empty() ? "-" : a.run.error, b.run.error.empty() ? "-" : b.run.error, ""});
  }
  return lines;
}

absl::StatusOr<std::string> RenderComparison(const Comparison& comparison, const CompareOptions& options) {
  if (options.format == "html") return RenderHtmlComparison(comparison, options);
  if (options.format == "json") {
    const RunRow a = Row(comparison.a), b = Row(comparison.b);
    nlohmann::json runs = nlohmann::json::array();
    for (const CompareSide* side : {&comparison.a, &comparison.b}) {
      nlohmann::json run = RunToJson(Row(*side), SweepArtifactsDir(side->sweep));
      run["sweep"] = {{"id", side->sweep.id}, {"name", side->sweep.name}};
      runs.push_back(std::move(run));
    }
    nlohmann::json ratio = nullptr;
    if (Comparable(a, b)) {
      ratio = nlohmann::json::object();
      for (const auto& loss : kLosses) {
        const auto r = Ratio(a, b, loss.member);
        ratio[loss.name] = r ? nlohmann::json(*r) : nlohmann::json();
      }
    }
    nlohmann::json better = nullptr;
    if (a.has_eval() && b.has_eval()) {
      better = nlohmann::json::object();
      for (const EvalMetricDef& def : EvalMetricDefs()) {
        const Better which = BetterBy(a, b, def.name);
        better[def.name + 5] = which == Better::kFirst    ? nlohmann::json(0)
                               : which == Better::kSecond ? nlohmann::json(1)
                                                          : nlohmann::json();
      }
    }
    nlohmann::json out = {{"format_version", kReportFormatVersion},
                          {"runs", runs},
                          {"differing_params", DifferingParameters(comparison)},
                          {"loss_ratio", ratio},
                          {"eval_better", better}};
    return out.dump(2) + "\n";
  }
  if (options.format != "table" && options.format != "markdown") {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: unknown format '", options.format, "'; use table, json, markdown or html"));
  }
  const bool markdown = options.format == "markdown";
  const std::vector<ComparisonLine> lines = ComparisonLines(comparison, options);
  const bool evaluated = comparison.a.run.has_eval() || comparison.b.run.has_eval();
  std::vector<std::vector<std::string>> table = {
      {"", absl::StrCat("#", comparison.a.run.index), absl::StrCat("#", comparison.b.run.index), "ratio"}};
  if (evaluated) table[0].push_back("better");
  for (const ComparisonLine& line : lines) {
    table.push_back({line.field, line.a, line.b, line.ratio});
    if (evaluated) table.back().push_back(line.better);
  }
  const size_t differing = DifferingParameters(comparison).size();
  const size_t params = Row(comparison.a).params.size();
  const std::string title = absl::StrCat(RunTitle(comparison.a), " vs ", RunTitle(comparison.b));
  std::string out = absl::StrCat(markdown ? "## " : "", markdown ? MarkdownText(title) : ForTerminal(title), "\n\n");
  out += markdown ? RenderMarkdownTable(table) : RenderColumns(table);
  if (differing == 0) {
    out += absl::StrCat("\nthe two runs have the same parameters\n");
  } else if (!options.all) {
    out += absl::StrCat("\n", differing, differing == 1 ? " parameter differs" : " parameters differ", "; ",
                        params > differing ? params - differing : 0, " are the same (--all shows every one)\n");
  }
  if (evaluated) {
    out += "better: by each evaluation metric, comparable across runs (eval/ssim higher, the others lower); a "
           "diverged run is never the better\n";
  }
  out += "ratio: the second run's loss over the first's";
  out += evaluated ? " (each run's losses are weighted by its own weights)\n" : "\n";
  for (const CompareSide* side : {&comparison.a, &comparison.b}) {
    if (side->run.diverged()) {
      out += absl::StrCat("#", side->run.index, " diverged at step ", side->run.diverged_step,
                          ": its losses and image are its last finite ones\n");
    }
  }
  return out;
}

}  // namespace stylesweep
