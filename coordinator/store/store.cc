#include "coordinator/store/store.h"

namespace stylesweep {

std::string_view AgentStateName(AgentState state) {
  switch (state) {
    case AgentState::kIdle:
      return "idle";
    case AgentState::kBusy:
      return "busy";
    case AgentState::kDraining:
      return "draining";
    case AgentState::kLost:
      return "lost";
    case AgentState::kQuarantined:
      return "quarantined";
  }
  return "unknown";
}

AgentState StateOf(const AgentRecord& agent, int64_t now_ms, int64_t lost_after_ms) {
  // Lost first: a silent agent does nothing, whatever it last said. A
  // quarantined one that still polls is alive but gets no work.
  if (now_ms - agent.last_seen_ms > lost_after_ms) return AgentState::kLost;
  if (!agent.quarantine_reason.empty()) return AgentState::kQuarantined;
  if (agent.draining) return AgentState::kDraining;
  if (agent.run_id != 0) return AgentState::kBusy;
  return AgentState::kIdle;
}

}  // namespace stylesweep
