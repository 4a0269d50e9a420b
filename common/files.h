#ifndef STYLESWEEP_COMMON_FILES_H_
#define STYLESWEEP_COMMON_FILES_H_

#include <string>

#include <sys/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

// Reads a whole file. NotFound / PermissionDenied / Internal name the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Who may read what a writer creates.
enum class FileAccess {
  // Files 0666 and directories 0777, less the umask: the usual for outputs
  // the user asked for (reports, stylized images).
  kUmask,
  // Files 0600 and directories 0700 whatever the umask: stored data that
  // may hold someone's private images.
  kOwnerOnly,
};

// Creates `path` and its missing parents. With kOwnerOnly every directory
// it creates is 0700; directories that already exist are left as they are.
absl::Status CreateDirectories(const std::string& path, FileAccess access);

// Writes `data` to `path` so that readers see either the old file or the
// whole new one, never a part: a temporary file in the same directory,
// fsync, rename. Creates missing parent directories. On failure (disk full,
// read-only) nothing is left behind and the error names the path and cause.
// `access` sets the permissions of the file and of the directories created.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data,
                                 FileAccess access = FileAccess::kUmask);

// "path:size:mtime": changes whenever the file is replaced or rewritten, so
// it keys caches of what was computed from the file. Empty when the file
// cannot be examined.
std::string FileIdentity(const std::string& path);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_FILES_H_
