#include "tools/submission.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/image_header.h"
#include "common/limits.h"
#include "common/sweep_spec.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;

// Trees of the kernel's making: their files are views of processes, devices
// and kernel state, never a user's images, and reading some of them blocks or
// never ends (/dev/zero).
constexpr const char* kSystemTrees[] = {"/proc", "/dev", "/sys"};

// Whether `path` is `dir` or lies below it; both absolute and resolved.
bool IsWithin(const fs::path& path, const fs::path& dir) {
  auto it = path.begin();
  for (const fs::path& part : dir) {
    if (part.empty()) continue;  // a trailing separator
    if (it == path.end() || *it != part) return false;
    ++it;
  }
  return true;
}

std::string FileType(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

absl::Status ErrnoStatus(int err, const std::string& message) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InvalidArgumentError(message);
  }
}

// Where a sweep file's images may come from: its own directory and the
// directories the user allowed, each resolved once.
class ImageSources {
 public:
  static absl::StatusOr<ImageSources> Make(const fs::path& sweep_dir, const std::vector<std::string>& allowed) {
    ImageSources sources;
    std::error_code ec;
    sources.sweep_dir_ = fs::canonical(sweep_dir, ec);
    if (ec) {
      return absl::NotFoundError(
          absl::StrCat("the sweep file's directory ", sweep_dir.string(), " cannot be resolved: ", ec.message()));
    }
    for (const std::string& dir : allowed) {
      const fs::path resolved = fs::canonical(dir, ec);
      if (ec) return absl::NotFoundError(absl::StrCat("--allow-dir ", dir, ": ", ec.message()));
      if (!fs::is_directory(resolved, ec)) {
        return absl::InvalidArgumentError(absl::StrCat("--allow-dir ", dir, ": not a directory"));
      }
      sources.allowed_.push_back(resolved);
    }
    return sources;
  }

  // Refuses a resolved image path outside the sweep file's directory and the
  // allowed ones, or under a system tree; `what` names the image.
  absl::Status Check(const fs::path& real, const std::string& what) const {
    for (const char* tree : kSystemTrees) {
      if (IsWithin(real, tree)) {
        return absl::PermissionDeniedError(absl::StrCat(what, " is under ", tree,
                                                        ", which holds no images; a sweep may not name files under "
                                                        "/proc, /dev or /sys, even with --allow-dir"));
      }
    }
    if (IsWithin(real, sweep_dir_)) return absl::OkStatus();
    for (const fs::path& dir : allowed_) {
      if (IsWithin(real, dir)) return absl::OkStatus();
    }
    std::string allowed;
    if (!allowed_.empty()) {
      allowed = absl::StrCat(" and the allowed ", allowed_.size() == 1 ? "directory " : "directories ",
                             absl::StrJoin(allowed_, ", ", [](std::string* out, const fs::path& dir) {
                               out->append(dir.string());
                             }));
    }
    return absl::PermissionDeniedError(absl::StrCat(what, " is outside the sweep file's directory ",
                                                    sweep_dir_.string(), allowed,
                                                    "; add --allow-dir DIR to allow another directory"));
  }

 private:
  fs::path sweep_dir_;
  std::vector<fs::path> allowed_;
};

// The bytes of an image at `real` (resolved, and allowed), refused unless it
// is a regular file. `too_large` is asked about its size on disk before it is
// read, and about the number of bytes read after.
absl::StatusOr<std::string> ReadRegularFile(const fs::path& real, const std::string& what,
                                            const std::function<absl::Status(uint64_t)>& too_large) {
  // The type first, without opening the file: opening a FIFO would block.
  struct stat info;
  if (::stat(real.c_str(), &info) != 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat(what, ": ", err == ENOENT ? "no such file" : std::strerror(err)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", FileType(info.st_mode), ", not a regular file"));
  }
  if (absl::Status s = too_large(static_cast<uint64_t>(info.st_size)); !s.ok()) return s;
  // Then once more through the descriptor, in case the path changed between
  // the look and the open: no link followed, and no wait for a writer.
  const int fd = ::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat(what, ": cannot read: ", std::strerror(err)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " changed while it was read: it is no longer a regular file"));
  }
  // At most one byte past the limit: enough to know it is over.
  std::string bytes;
  char buffer[1 << 16];
  while (bytes.size() <= kMaxImageBytes) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      return ErrnoStatus(err, absl::StrCat(what, ": cannot read: ", std::strerror(err)));
    }
    if (got == 0) break;
    bytes.append(buffer, static_cast<size_t>(got));
  }
  if (absl::Status s = too_large(bytes.size()); !s.ok()) return s;
  return bytes;
}

}  // namespace

absl::StatusOr<Submission> PrepareSubmission(const std::string& path, const SubmissionOptions& options) {
  std::error_code ec;
  // Sizes are checked before reading, so a wrong path to a huge file fails at once.
  if (const uintmax_t size = std::filesystem::file_size(path, ec); !ec) {
    if (absl::Status s = CheckSweepYamlSize(path, size); !s.ok()) return s;
  }
  auto text = ReadFileToString(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat("sweep file: ", text.status().message()));
  auto spec = ParseSweep(*text, path);
  if (!spec.ok()) return spec.status();
  Submission submission{*text, path, {}, {}, spec->Warnings()};
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  for (const SweepSpec::FileRef& weights : spec->WeightsRefs()) {
    const std::filesystem::path p(weights.ref);
    const std::string resolved = (p.is_absolute() ? p : base / p).lexically_normal().string();
    const std::string where = weights.line > 0 ? absl::StrCat(path, ":", weights.line) : path;
    absl::Status usable;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(resolved, ec)) {
      usable = absl::NotFoundError("no such file");
    } else if (std::filesystem::file_size(resolved, ec) == 0 || ec) {
      usable = absl::InvalidArgumentError("the file is empty");
    } else if (std::ifstream in(resolved, std::ios::binary); !in || in.peek() == EOF) {
      usable = absl::PermissionDeniedError("cannot read the file");
    } else if (options.check_weights) {
      usable = options.check_weights(resolved);
    }
    if (!usable.ok()) {
      return absl::Status(usable.code(), absl::StrCat(where, ": ", weights.key, ": weights '", weights.ref, "' (",
                                                      resolved, "): ", usable.message()));
    }
    submission.weights[weights.ref] = resolved;
  }
  auto sources = ImageSources::Make(base, options.allowed_dirs);
  if (!sources.ok()) return sources.status();
  uint64_t image_bytes = 0;  // all images so far
  for (const SweepSpec::FileRef& image : spec->ImageRefs()) {
    const std::filesystem::path p(image.ref);
    const std::filesystem::path resolved = (p.is_absolute() ? p : base / p).lexically_normal();
    const std::string where = image.line > 0 ? absl::StrCat(path, ":", image.line) : path;
    // Links followed (those that lead nowhere are reported missing below).
    const std::filesystem::path real = std::filesystem::weakly_canonical(resolved, ec);
    if (ec) {
      return ErrnoStatus(ec.value(), absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (",
                                                  resolved.string(), ") cannot be resolved: ", ec.message()));
    }
    const std::string what =
        absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved.string(),
                     real != resolved ? absl::StrCat(", which resolves to ", real.string()) : "", ")");
    if (absl::Status s = sources->Check(real, what); !s.ok()) return s;
    auto too_large = [&](uint64_t size) -> absl::Status {
      if (size > kMaxImageBytes) {
        return absl::InvalidArgumentError(absl::StrCat(what, " is ", size, " bytes; an image may be at most ",
                                                       DescribeByteLimit(kMaxImageBytes)));
      }
      if (image_bytes + size > kMaxSubmissionImageBytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " brings the sweep's images to ", image_bytes + size,
                         " bytes; the images of one sweep may be at most ",
                         DescribeByteLimit(kMaxSubmissionImageBytes), " together"));
      }
      return absl::OkStatus();
    };
    auto bytes = ReadRegularFile(real, what, too_large);
    if (!bytes.ok()) return bytes.status();
    if (bytes->empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
    if (absl::Status s = CheckImage(*bytes, what).status(); !s.ok()) return s;
    image_bytes += bytes->size();
    submission.files[image.ref] = std::move(*bytes);
  }
  return submission;
}

}  // namespace stylesweep
