#ifndef STYLESWEEP_COMMON_FILES_H_
#define STYLESWEEP_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

// Reads a whole file. NotFound / PermissionDenied / Internal name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `data` to `path` so that readers see either the old file or the
// whole new one, never a part: a temporary file in the same directory,
// fsync, rename. Creates missing parent directories. On failure (disk full,
// read-only) nothing is left behind and the error names the path and cause.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data);

// "path:size:mtime": changes whenever the file is replaced or rewritten, so
// it keys caches of what was computed from the file. Empty when the file
// cannot be examined.
std::string FileIdentity(const std::string& path);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_FILES_H_
