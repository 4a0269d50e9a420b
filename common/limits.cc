#include "common/limits.h"

#include "absl/strings/str_cat.h"

namespace stylesweep {

std::string DescribeByteLimit(uint64_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return absl::StrCat(bytes / kMiB, " MiB (", bytes, " bytes)");
  if (bytes >= kKiB && bytes % kKiB == 0) return absl::StrCat(bytes / kKiB, " KiB (", bytes, " bytes)");
  return absl::StrCat(bytes, " bytes");
}

std::string DescribePixelLimit() {
  return absl::StrCat(kMaxImagePixels / kMiB, " Mi pixels (", kMaxImagePixels, ", e.g. 8192x8192)");
}

}  // namespace stylesweep
