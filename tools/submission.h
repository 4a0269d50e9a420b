#ifndef STYLESWEEP_TOOLS_SUBMISSION_H_
#define STYLESWEEP_TOOLS_SUBMISSION_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

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
  std::vector<std::string> warnings;           // SweepSpec::Warnings: worth saying, not worth refusing
};

// Checks that a weights file is usable (the engine's loader); returns an
// error naming the file, what is wrong and how to convert it.
using WeightsCheck = std::function<absl::Status(const std::string& path)>;

struct SubmissionOptions {
  // Checks each weights file; when unset, weights are only checked for being
  // a readable, non-empty file.
  WeightsCheck check_weights;
  // Directories besides the sweep file's own that images may be read from
  // (`--allow-dir`); relative ones are relative to the working directory.
  std::vector<std::string> allowed_dirs;
};

// Reads and validates `path`, every image it names and every weights file
// (relative paths are relative to the file).
//
// A sweep file may come from someone else, and its images are sent to the
// coordinator and shown in reports, so it is held to what a sweep needs
// before any image is read: each image, once links are followed, must be a
// regular file inside the sweep file's directory or one of
// `options.allowed_dirs`, and never under /proc, /dev or /sys (not even when
// allowed). Its type is checked without opening it (opening a FIFO would
// block), then it is opened without following a final link and checked again
// through the descriptor. Its bytes must then be a PNG or JPEG whose header
// declares at most kMaxImagePixels. The sweep file and its images are refused
// when over the limits in common/limits.h, from their sizes on disk before
// they are read.
//
// Errors name the file and line, the key, the image as written, the path it
// resolves to, and the rule it breaks: PermissionDenied for an image outside
// the allowed directories, NotFound for a missing file, InvalidArgument for
// one that is not a regular file, not an image or over a limit.
absl::StatusOr<Submission> PrepareSubmission(const std::string& path, const SubmissionOptions& options = {});

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SUBMISSION_H_
