#ifndef STYLESWEEP_TOOLS_SUBMISSION_H_
#define STYLESWEEP_TOOLS_SUBMISSION_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

// A sweep file with the bytes of every image it names, ready to send.
// Weights files are too large to send with every sweep (half a gigabyte for
// torchvision's VGG19): they are named by absolute path, and every agent
// reads that path on its own machine.
struct Submission {
  std::string yaml;
  std::string source;                          // the path as the user gave it
  std::map<std::string, std::string> files;    // image reference as written -> bytes
  std::map<std::string, std::string> weights;  // weights reference as written -> absolute path
};

// Checks that a weights file is usable (the engine's loader); returns an
// error naming the file, what is wrong and how to convert it.
using WeightsCheck = std::function<absl::Status(const std::string& path)>;

// Reads and validates `path`, every image it names and every weights file
// (relative paths are relative to the file; weights are checked with
// `check_weights` when given, else only for being a readable, non-empty
// file). The sweep file and its images are refused when over the limits in
// common/limits.h, from their sizes on disk before they are read. Errors name
// the file, the key and line, and the path that could not be used.
absl::StatusOr<Submission> PrepareSubmission(const std::string& path, const WeightsCheck& check_weights = nullptr);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SUBMISSION_H_
