#include "tools/live_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/terminal_text.h"

namespace stylesweep {
namespace {

std::string Age(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return absl::StrFormat("%.1fs", ms / 1000.0);
  if (ms < 3'600'000) return absl::StrFormat("%dm%02ds", ms / 60'000, (ms / 1000) % 60);
  if (ms < 86'400'000) return absl::StrFormat("%dh%02dm", ms / 3'600'000, (ms / 60'000) % 60);
  return absl::StrFormat("%dd", ms / 86'400'000);
}

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  return Age(static_cast<int64_t>(seconds * 1000));
}

std::string DeviceOf(const AgentRecord& agent) {
  std::string device = agent.device;
  if (!agent.device_name.empty()) absl::StrAppend(&device, " ", agent.device_name);
  if (agent.memory_bytes > 0) absl::StrAppend(&device, " (", FormatBytes(agent.memory_bytes), ")");
  return device;
}

bool Working(const std::string& state) { return state == "busy" || state == "draining"; }

// Left-aligned columns separated by two spaces; the last one is not padded.
// Each cell goes through ForTerminal.
std::string Columns(const std::vector<std::vector<std::string>>& cells) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : cells) {
    rows.emplace_back();
    for (const std::string& cell : row) rows.back().push_back(ForTerminal(cell));
  }
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  if (bytes <= 0) return "?";
  const double gib = bytes / (1024.0 * 1024.0 * 1024.0);
  if (gib >= 10) return absl::StrFormat("%.0f GiB", gib);
  if (gib >= 1) return absl::StrFormat("%.1f GiB", gib);
  return absl::StrFormat("%.0f MiB", bytes / (1024.0 * 1024.0));
}

std::string ProgressBar(int step, int steps, int width) {
  const double fraction = steps > 0 ? std::clamp(static_cast<double>(step) / steps, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(fraction * width));
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "]");
}

std::string RenderAgentsTable(const std::vector<AgentLine>& agents, int64_t now_ms) {
  if (agents.empty()) return "no agents have registered\n";
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "HOST", "DEVICE", "STATE", "RUN", "STEP", "STEPS/S", "HEARTBEAT", "FAILURES"}};
  std::map<std::string, int> by_state;
  for (const AgentLine& line : agents) {
    const AgentRecord& a = line.agent;
    ++by_state[line.state];
    const bool working = Working(line.state);
    rows.push_back({a.name, a.host, DeviceOf(a), line.state, working ? absl::StrCat(a.run_id) : "-",
                    working ? absl::StrCat(a.step, "/", a.steps) : "-",
                    working && a.steps_per_second > 0 ? absl::StrFormat("%.2f", a.steps_per_second) : "-",
                    absl::StrCat(Age(now_ms - a.last_seen_ms), " ago"),
                    absl::StrCat(a.consecutive_failures, " in a row, ", a.failures, " of ", a.runs_finished)});
  }
  std::string out = Columns(rows);
  std::vector<std::string> counts;
  for (const auto& [state, n] : by_state) counts.push_back(absl::StrCat(n, " ", state));
  absl::StrAppend(&out, agents.size(), agents.size() == 1 ? " agent: " : " agents: ", absl::StrJoin(counts, ", "),
                  "\n");
  for (const AgentLine& line : agents) {
    if (line.agent.quarantine_reason.empty()) continue;
    absl::StrAppend(&out, "\n", ForTerminal(line.agent.name), " is quarantined: ",
                    ForTerminal(line.agent.quarantine_reason),
                    "\n  let it take runs again with: stylesweep agents --release ", ForTerminal(line.agent.name),
                    "\n");
  }
  return out;
}

std::string RenderWatchFrame(const std::vector<SweepLine>& sweeps, const std::vector<AgentLine>& agents,
                             int64_t now_ms) {
  std::string out;
  if (sweeps.empty()) absl::StrAppend(&out, "no sweeps\n");
  for (const SweepLine& sweep : sweeps) {
    int total = 0, ended = 0;
    std::vector<std::string> counts;
    for (const auto& [state, n] : sweep.runs_by_state) {
      total += n;
      if (state != "QUEUED" && state != "RUNNING") ended += n;
      if (n > 0) counts.push_back(absl::StrCat(n, " ", state));
    }
    absl::StrAppend(&out, "sweep ", sweep.id, " ", ForTerminal(sweep.name), sweep.paused ? " (paused)" : "", "  ",
                    ProgressBar(ended, total, 20), " ", ended, "/", total, " done  ", absl::StrJoin(counts, ", "),
                    "\n");
  }
  std::vector<std::vector<std::string>> running;
  for (const AgentLine& line : agents) {
    if (!Working(line.state)) continue;
    const AgentRecord& a = line.agent;
    const double left =
        a.steps_per_second > 0 ? (a.steps - a.step) / a.steps_per_second : std::numeric_limits<double>::quiet_NaN();
    running.push_back({absl::StrCat("  run ", a.run_id), ProgressBar(a.step, a.steps, 30),
                       absl::StrCat(a.step, "/", a.steps),
                       a.steps_per_second > 0 ? absl::StrFormat("%.2f steps/s", a.steps_per_second) : "-",
                       absl::StrCat(Duration(left), " left"), absl::StrCat("on ", a.name),
                       line.state == "draining" ? "(draining)" : ""});
  }
  if (!running.empty()) absl::StrAppend(&out, "\nrunning:\n", Columns(running));
  std::map<std::string, std::vector<std::string>> by_state;
  for (const AgentLine& line : agents) by_state[line.state].push_back(ForTerminal(line.agent.name));
  std::vector<std::string> parts;
  for (const auto& [state, names] : by_state) {
    parts.push_back(absl::StrCat(names.size(), " ", state, state == "lost" || state == "quarantined"
                                                               ? absl::StrCat(" (", absl::StrJoin(names, ", "), ")")
                                                               : ""));
  }
  absl::StrAppend(&out, "\nagents: ", agents.empty() ? "none" : absl::StrJoin(parts, ", "), "\n");
  (void)now_ms;
  return out;
}

}  // namespace stylesweep
