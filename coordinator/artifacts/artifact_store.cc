#include "coordinator/artifacts/artifact_store.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/hash.h"

namespace stylesweep {
namespace {

constexpr char kBlobPrefix[] = "sha256:";

}  // namespace

ArtifactStore::ArtifactStore(std::string root) : root_(std::move(root)) {}

absl::StatusOr<std::string> ArtifactStore::BlobPath(const std::string& blob_id) const {
  if (!absl::StartsWith(blob_id, kBlobPrefix) || blob_id.size() != sizeof(kBlobPrefix) - 1 + 64) {
    return absl::InvalidArgumentError(absl::StrCat("malformed blob id '", blob_id, "'"));
  }
  const std::string hex = blob_id.substr(sizeof(kBlobPrefix) - 1);
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("malformed blob id '", blob_id, "'"));
    }
  }
  return (std::filesystem::path(root_) / "blobs" / hex.substr(0, 2) / hex).string();
}

absl::StatusOr<std::string> ArtifactStore::PutBlob(const std::string& data) {
  const std::string id = absl::StrCat(kBlobPrefix, Sha256Hex(data));
  auto path = BlobPath(id);
  if (!path.ok()) return path.status();
  std::error_code ec;
  if (std::filesystem::exists(*path, ec)) return id;
  if (absl::Status s = WriteFileAtomically(*path, data); !s.ok()) return s;
  return id;
}

absl::StatusOr<std::string> ArtifactStore::ReadBlob(const std::string& blob_id) const {
  auto path = BlobPath(blob_id);
  if (!path.ok()) return path.status();
  return ReadFileToString(*path);
}

absl::StatusOr<std::string> ArtifactStore::PutSnapshot(const std::string& sweep_dir, int run_index, int attempt,
                                                       int step, bool final, const std::string& png) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06d.png", step);
  const std::string relative = absl::StrCat(sweep_dir, "/run-", run_index, "/attempt-", attempt, "/",
                                            final ? std::string("final.png") : std::string(name));
  if (absl::Status s = WriteFileAtomically((std::filesystem::path(root_) / relative).string(), png); !s.ok()) {
    return s;
  }
  return relative;
}

absl::StatusOr<std::string> ArtifactStore::ReadArtifact(const std::string& relative_path) const {
  absl::StatusOr<std::string> full = ResolveArtifact(relative_path);
  if (!full.ok()) return full.status();
  return ReadFileToString(*full);
}

absl::StatusOr<std::string> ArtifactStore::ResolveArtifact(const std::string& relative_path) const {
  const std::filesystem::path relative(relative_path);
  auto refuse = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("artifact path '", relative_path, "' is not a path inside the artifacts directory"));
  };
  if (relative_path.empty() || relative.is_absolute() || relative.has_root_name()) return refuse();
  for (const auto& part : relative) {
    if (part == "..") return refuse();
  }
  // A symbolic link inside the directory may still point out of it: compare
  // the real paths.
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::weakly_canonical(root_, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("artifacts directory '", root_, "': ", ec.message()));
  const std::filesystem::path full = std::filesystem::weakly_canonical(root / relative, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("artifact '", relative_path, "': ", ec.message()));
  auto [root_end, unused] = std::mismatch(root.begin(), root.end(), full.begin(), full.end());
  if (root_end != root.end()) return refuse();
  return full.string();
}

std::string ArtifactStore::SweepDir(int64_t sweep_id, const std::string& name) {
  std::string safe;
  for (char c : name) {
    safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  }
  return absl::StrCat(sweep_id, "-", safe);
}

}  // namespace stylesweep
