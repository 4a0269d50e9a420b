#include "tools/submission.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/sweep_spec.h"

namespace stylesweep {

absl::StatusOr<Submission> PrepareSubmission(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return absl::Status(text.status().code(), absl::StrCat("sweep file: ", text.status().message()));
  auto spec = ParseSweep(*text, path);
  if (!spec.ok()) return spec.status();
  Submission submission{*text, path, {}};
  const std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  for (const SweepSpec::ImageRef& image : spec->ImageRefs()) {
    const std::filesystem::path p(image.ref);
    const std::string resolved = (p.is_absolute() ? p : base / p).lexically_normal().string();
    auto bytes = ReadFileToString(resolved);
    const std::string where = image.line > 0 ? absl::StrCat(path, ":", image.line) : path;
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved,
                                       "): ", bytes.status().message()));
    }
    if (bytes->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", image.key, ": image '", image.ref, "' (", resolved, ") is empty"));
    }
    submission.files[image.ref] = std::move(*bytes);
  }
  return submission;
}

}  // namespace stylesweep
