#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace stylesweep {
namespace {

absl::Status ErrnoError(const std::string& what, const std::string& path, int err) {
  const std::string message = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace

absl::Status CreateDirectories(const std::string& path, FileAccess access) {
  std::error_code ec;
  if (access == FileAccess::kUmask) {
    std::filesystem::create_directories(path, ec);
    if (ec) return ErrnoError("cannot create directory", path, ec.value());
    return absl::OkStatus();
  }
  // Parents first, each one missing made 0700. chmod, not only mkdir's mode:
  // a umask could take bits from 0700 (the owner's own), never add any.
  std::filesystem::path built;
  for (const auto& part : std::filesystem::path(path).lexically_normal()) {
    built /= part;
    if (part.empty() || part == "/" || part == "." || part == "..") continue;
    if (::mkdir(built.c_str(), 0700) == 0) {
      if (::chmod(built.c_str(), 0700) != 0) return ErrnoError("cannot restrict directory", built.string(), errno);
      continue;
    }
    const int err = errno;
    if (err != EEXIST) return ErrnoError("cannot create directory", built.string(), err);
    if (!std::filesystem::is_directory(built, ec)) {
      return absl::FailedPreconditionError(absl::StrCat("cannot create directory '", built.string(),
                                                        "': a file of that name is in the way"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is a directory, not a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("cannot read", path, errno);
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return ErrnoError("cannot read", path, errno);
  return std::move(out).str();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data, FileAccess access) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    if (absl::Status s = CreateDirectories(target.parent_path().string(), access); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("cannot write '", path, "': ", s.message()));
    }
  }
  // A name no other writer uses. kUmask: O_EXCL with mode 0666 lets the
  // umask decide the permissions, as for any file the user creates.
  // kOwnerOnly: 0600 from the start (no moment where others could open it),
  // then fchmod so that the umask changes nothing.
  const bool owner_only = access == FileAccess::kOwnerOnly;
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp-", ::getpid(), "-", counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, owner_only ? 0600 : 0666);
  if (fd < 0) return ErrnoError("cannot write", path, errno);
  if (owner_only && ::fchmod(fd, 0600) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoError("cannot restrict", path, err);
  }
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoError("cannot write", path, err);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError("cannot write", path, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError("cannot write", path, err);
  }
  // The rename is durable only once the directory entry is on disk.
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

std::string FileIdentity(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return "";
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return "";
  return absl::StrCat(path, ":", size, ":", mtime.time_since_epoch().count());
}

}  // namespace stylesweep
