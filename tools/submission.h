#ifndef STYLESWEEP_TOOLS_SUBMISSION_H_
#define STYLESWEEP_TOOLS_SUBMISSION_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace stylesweep {

// A sweep file with the bytes of every image it names, ready to send.
struct Submission {
  std::string yaml;
  std::string source;                        // the path as the user gave it
  std::map<std::string, std::string> files;  // image reference as written -> bytes
};

// Reads and validates `path` and every image it names (relative paths are
// relative to the file). Errors name the file, the key and line, and the
// image path that could not be read.
absl::StatusOr<Submission> PrepareSubmission(const std::string& path);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SUBMISSION_H_
