#ifndef STYLESWEEP_COMMON_RUN_STATE_H_
#define STYLESWEEP_COMMON_RUN_STATE_H_

#include <optional>
#include <string_view>

namespace stylesweep {

// The life of a run. The words are the same in the database, the protocol,
// the CLI and the reports.
enum class RunState {
  kQueued,     // waiting for an agent
  kRunning,    // leased to an agent
  kSucceeded,  // all steps ran, final image stored
  kFailed,     // the engine reported an error (kept with the run)
  kLost,       // the agent holding it disappeared
  kCancelled,  // the user cancelled it
  kPruned,     // stopped early by the search
};

std::string_view RunStateName(RunState state);  // "QUEUED", "RUNNING", ...
std::optional<RunState> ParseRunState(std::string_view name);
bool IsTerminal(RunState state);  // SUCCEEDED, FAILED, CANCELLED, PRUNED

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_RUN_STATE_H_
