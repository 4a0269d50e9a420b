#ifndef STYLESWEEP_TOOLS_LIVE_VIEW_H_
#define STYLESWEEP_TOOLS_LIVE_VIEW_H_

// `stylesweep agents` and `stylesweep watch`: what the agents are doing and
// how far the sweeps have got, rendered from what the coordinator reports.
// Pure functions of their inputs, so tests check them with fixed values.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/store/store.h"

namespace stylesweep {

// An agent as the coordinator reports it: its record and its state's name
// (idle, busy, draining, lost, quarantined).
struct AgentLine {
  AgentRecord agent;
  std::string state;
};

// A sweep's progress, as a line of `watch`.
struct SweepLine {
  int64_t id = 0;
  std::string name;
  std::map<std::string, int> runs_by_state;
  bool paused = false;
};

// "NVIDIA H200, 141 GiB" / "2.0 GiB" etc.
std::string FormatBytes(int64_t bytes);
// "[#######-------------]" of `width` cells, filled step/steps.
std::string ProgressBar(int step, int steps, int width);

// One row per agent: name, host, device (with its name and memory), state,
// run, step/steps, steps/s, the age of its last heartbeat, and failures
// (in a row / all); then why each quarantined agent is quarantined and how
// to release it. `now_ms` is the coordinator's clock.
std::string RenderAgentsTable(const std::vector<AgentLine>& agents, int64_t now_ms);

// One `watch` frame: a line per sweep (runs by state, done/total, paused),
// then a progress bar per running run (from its agent's report, with steps/s
// and time left), then the agents' states in one line.
std::string RenderWatchFrame(const std::vector<SweepLine>& sweeps, const std::vector<AgentLine>& agents,
                             int64_t now_ms);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_LIVE_VIEW_H_
