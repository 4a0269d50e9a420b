#include "common/run_state.h"

#include <array>
#include <utility>

namespace stylesweep {
namespace {

constexpr std::array<std::pair<RunState, std::string_view>, 7> kNames = {{
    {RunState::kQueued, "QUEUED"},
    {RunState::kRunning, "RUNNING"},
    {RunState::kSucceeded, "SUCCEEDED"},
    {RunState::kFailed, "FAILED"},
    {RunState::kLost, "LOST"},
    {RunState::kCancelled, "CANCELLED"},
    {RunState::kPruned, "PRUNED"},
}};

}  // namespace

std::string_view RunStateName(RunState state) {
  for (const auto& [s, name] : kNames) {
    if (s == state) return name;
  }
  return "UNKNOWN";
}

std::optional<RunState> ParseRunState(std::string_view name) {
  for (const auto& [s, n] : kNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(RunState state) {
  return state == RunState::kSucceeded || state == RunState::kFailed || state == RunState::kCancelled ||
         state == RunState::kPruned;
}

}  // namespace stylesweep
