#include "tools/submission.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/limits.h"
#include "common/sweep_spec.h"

namespace stylesweep {

absl::StatusOr<Submission> PrepareSubmission(const std::string& path, const WeightsCheck& check_weights) {
  std::error_code ec;
  // Sizes are checked before reading, so a wrong path to a huge file fails at once.
  if (const uintmax_t size = std::filesystem::file_size(path, ec); !ec) {
    if (absl::Status s = CheckSweepYamlSize(path, size); !s.ok()) return s;
  }
  auto text = ReadFileToString(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat("sweep file: ", text.status().message()));
  auto spec = ParseSweep(*text, path);
  if (!spec.ok()) return spec.status();
  Submission submission{*text, path, {}, {}};
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
    } else if (check_weights) {
      usable = check_weights(resolved);
    }
    if (!usable.ok()) {
      return absl::Status(usable.code(), absl::StrCat(where, ": ", weights.key, ": weights '", weights.ref, "' (",
                                                      resolved, "): ", usable.message()));
    }
    submission.weights[weights.ref] = resolved;
  }
  uint64_t image_bytes = 0;  // all images so far
  for (const SweepSpec::FileRef& image : spec->ImageRefs()) {
    const std::filesystem::path p(image.ref);
    const std::string resolved = (p.is_absolute() ? p : base / p).lexically_normal().string();
    const std::string where = image.line > 0 ? absl::StrCat(path, ":", image.line) : path;
    const std::string what = absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved, ")");
    // The size on disk first (a file that cannot be examined gets the read's
    // error below), then the bytes read, in case the file grew in between.
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
    if (const uintmax_t size = std::filesystem::file_size(resolved, ec); !ec) {
      if (absl::Status s = too_large(size); !s.ok()) return s;
    }
    auto bytes = ReadFileToString(resolved);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved,
                                       "): ", bytes.status().message()));
    }
    if (bytes->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved, ") is empty"));
    }
    if (absl::Status s = too_large(bytes->size()); !s.ok()) return s;
    image_bytes += bytes->size();
    submission.files[image.ref] = std::move(*bytes);
  }
  return submission;
}

}  // namespace stylesweep
