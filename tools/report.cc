#include "tools/report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace stylesweep {
namespace {

std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string FormatValue(const nlohmann::json& v, const nlohmann::json& image_names) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (image_names.contains(s)) return std::filesystem::path(image_names[s].get<std::string>()).filename().string();
    return s;
  }
  if (v.is_number_float()) return FormatNumber(v.get<double>());
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& item : v) parts.push_back(FormatValue(item, image_names));
    return absl::StrJoin(parts, ",");
  }
  return v.dump();
}

std::string FormatDuration(const RunRecord& run) {
  if (run.started_ms == 0) return "-";
  const int64_t end = run.finished_ms != 0 ? run.finished_ms : run.started_ms;
  if (run.finished_ms == 0) return "...";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", (end - run.started_ms) / 1000.0);
  return buf;
}

// Renders rows as columns padded to their widest cell.
std::string Columns(const std::vector<std::vector<std::string>>& rows) {
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

}  // namespace

std::map<std::string, int> CountByState(const std::vector<RunRecord>& runs) {
  std::map<std::string, int> counts;
  for (const RunRecord& run : runs) ++counts[std::string(RunStateName(run.state))];
  return counts;
}

std::string CountsLine(const std::map<std::string, int>& counts) {
  int total = 0;
  for (const auto& [state, n] : counts) total += n;
  std::vector<std::string> parts;
  for (RunState s : {RunState::kSucceeded, RunState::kRunning, RunState::kQueued, RunState::kFailed, RunState::kLost,
                     RunState::kCancelled, RunState::kPruned}) {
    auto it = counts.find(std::string(RunStateName(s)));
    if (it != counts.end()) parts.push_back(absl::StrCat(it->second, " ", it->first));
  }
  return absl::StrCat(total, total == 1 ? " run" : " runs",
                      parts.empty() ? "" : absl::StrCat(": ", absl::StrJoin(parts, ", ")));
}

std::string RenderRunTable(const SweepView& view) {
  const nlohmann::json spec = nlohmann::json::parse(view.sweep.spec_json, nullptr, false);
  const nlohmann::json image_names = spec.is_object() && spec.contains("images") ? spec["images"] : nlohmann::json::object();
  const std::string artifacts = spec.is_object() && spec.contains("artifacts_dir") ? spec["artifacts_dir"].get<std::string>() : "";

  std::vector<nlohmann::json> params;
  for (const RunRecord& run : view.runs) {
    params.push_back(nlohmann::json::parse(run.params_json, nullptr, false));
  }
  // Keys whose value differs between runs become columns; the rest are
  // printed once as the sweep's shared settings.
  std::vector<std::string> varying, fixed;
  if (!params.empty() && params[0].is_object()) {
    for (const auto& [key, value] : params[0].items()) {
      bool same = true;
      for (const auto& p : params) same = same && p.is_object() && p.contains(key) && p[key] == value;
      (same ? fixed : varying).push_back(key);
    }
  }

  std::string out = absl::StrCat("sweep ", view.sweep.id, " '", view.sweep.name, "' (", view.sweep.method, ", ",
                                 view.sweep.source, "): ", CountsLine(CountByState(view.runs)), "\n");
  if (!fixed.empty()) {
    std::vector<std::string> settings;
    for (const auto& key : fixed) {
      const nlohmann::json& value = params[0][key];
      if (value.is_array() && value.empty()) continue;  // an unused option (no blend weights, say)
      settings.push_back(absl::StrCat(key, "=", FormatValue(value, image_names)));
    }
    out += absl::StrCat("shared: ", absl::StrJoin(settings, " "), "\n");
  }
  if (!artifacts.empty()) out += absl::StrCat("images under ", artifacts, "\n");
  out += "\n";

  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"run"};
  for (const auto& key : varying) header.push_back(key);
  for (const char* h : {"state", "step", "total", "style", "content", "tv", "time", "image"}) header.push_back(h);
  rows.push_back(header);
  for (size_t i = 0; i < view.runs.size(); ++i) {
    const RunRecord& run = view.runs[i];
    std::vector<std::string> row = {absl::StrCat("#", run.index)};
    for (const auto& key : varying) {
      row.push_back(params[i].is_object() && params[i].contains(key) ? FormatValue(params[i][key], image_names) : "-");
    }
    row.push_back(std::string(RunStateName(run.state)));
    const bool has_losses = run.last_step >= 0;
    row.push_back(has_losses ? absl::StrCat(run.last_step) : "-");
    for (double v : {run.total_loss, run.style_loss, run.content_loss, run.tv_loss}) {
      row.push_back(has_losses ? FormatNumber(v) : "-");
    }
    row.push_back(FormatDuration(run));
    row.push_back(run.final_snapshot.empty() ? (run.error.empty() ? "-" : "error: " + run.error)
                                             : run.final_snapshot);
    rows.push_back(std::move(row));
  }
  out += Columns(rows);
  return out;
}

std::string RenderSweepList(const std::vector<SweepView>& sweeps) {
  if (sweeps.empty()) return "no sweeps yet: submit one with `stylesweep submit SWEEP.yaml`\n";
  std::vector<std::vector<std::string>> rows = {{"id", "name", "method", "source", "runs"}};
  for (const SweepView& v : sweeps) {
    rows.push_back({absl::StrCat(v.sweep.id), v.sweep.name, v.sweep.method, v.sweep.source, CountsLine(v.counts)});
  }
  return Columns(rows);
}

}  // namespace stylesweep
