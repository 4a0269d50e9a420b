#ifndef STYLESWEEP_TOOLS_COMMANDS_H_
#define STYLESWEEP_TOOLS_COMMANDS_H_

// The stylesweep CLI's commands that do more than print. Each returns the
// process exit status and prints its own errors.

#include <string>
#include <vector>

#include "common/run_params.h"

namespace stylesweep {

struct LocalOptions {
  std::string sweep_file;
  std::string db = "stylesweep.db";
  std::string artifacts = "artifacts";
  int agents = 1;
  int threads = 0;  // total across agents; 0: all cores
  std::string weights;
  std::string device = "cpu";
  bool allow_duplicate = false;  // run a sweep this database has seen before
  std::vector<std::string> allowed_dirs;  // where images may come from besides the sweep file's directory
};

// Starts a coordinator and `agents` agents in this process (talking gRPC over
// loopback), runs the sweep to completion and prints its report.
int RunLocal(const LocalOptions& options);

struct StylizeOptions {
  RunParams params;
  std::string out;
  std::string metrics_out;
  std::string weights;
  std::string device = "cpu";
  int threads = 0;
};

// One run, no coordinator: writes the final image to `out`, snapshots beside
// it, and (optionally) one JSON line of losses per step.
int RunStylize(const StylizeOptions& options);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_COMMANDS_H_
