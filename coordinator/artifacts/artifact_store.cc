#include "coordinator/artifacts/artifact_store.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

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
  if (absl::Status s = WriteFileAtomically(*path, data, FileAccess::kOwnerOnly); !s.ok()) return s;
  return id;
}

absl::StatusOr<std::string> ArtifactStore::ReadBlob(const std::string& blob_id) const {
  auto path = BlobPath(blob_id);
  if (!path.ok()) return path.status();
  return ReadFileToString(*path);
}

std::string ArtifactStore::SnapshotPath(const std::string& sweep_dir, int run_index, int attempt, int step,
                                        bool final) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06d.png", step);
  return absl::StrCat(sweep_dir, "/run-", run_index, "/attempt-", attempt, "/",
                      final ? std::string("final.png") : std::string(name));
}

ArtifactStore::StagedFile::StagedFile(StagedFile&& other) noexcept
    : temporary_(std::exchange(other.temporary_, "")), target_(std::move(other.target_)) {}

ArtifactStore::StagedFile::~StagedFile() {
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
}

absl::Status ArtifactStore::StagedFile::Commit() {
  if (temporary_.empty()) return absl::FailedPreconditionError(absl::StrCat(target_, ": nothing staged to commit"));
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot move the new file into place at ", target_, ": ",
                                            std::strerror(errno)));
  }
  temporary_.clear();
  return absl::OkStatus();
}

absl::StatusOr<ArtifactStore::StagedFile> ArtifactStore::Stage(const std::string& relative, const std::string& data) {
  static std::atomic<uint64_t> counter{0};
  const std::string target = (std::filesystem::path(root_) / relative).string();
  const std::string temporary = absl::StrCat(target, ".staged-", ::getpid(), "-", counter++);
  if (absl::Status s = WriteFileAtomically(temporary, data, FileAccess::kOwnerOnly); !s.ok()) return s;
  return StagedFile(temporary, target);
}

namespace {

// Bytes of the regular files under `path` (itself included).
int64_t BytesUnder(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::symlink_status(path, ec))) {
    return static_cast<int64_t>(std::filesystem::file_size(path, ec));
  }
  int64_t bytes = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) bytes += static_cast<int64_t>(it->file_size(ec));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<int64_t> ArtifactStore::RemoveSweepDir(const std::string& sweep_dir) {
  if (sweep_dir.empty() || sweep_dir.find('/') != std::string::npos || sweep_dir == "." || sweep_dir == ".." ||
      sweep_dir == "blobs") {
    return absl::InvalidArgumentError(absl::StrCat("'", sweep_dir, "' is not a sweep directory"));
  }
  const std::filesystem::path dir = std::filesystem::path(root_) / sweep_dir;
  const int64_t bytes = BytesUnder(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", dir.string(), ": ", ec.message()));
  return bytes;
}

absl::StatusOr<int64_t> ArtifactStore::RemoveBlob(const std::string& blob_id) {
  auto path = BlobPath(blob_id);
  if (!path.ok()) return path.status();
  const int64_t bytes = BytesUnder(*path);
  std::error_code ec;
  std::filesystem::remove(*path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", *path, ": ", ec.message()));
  // Its fan-out folder (blobs/<first two hex digits>) goes too once empty;
  // remove() leaves a folder that still holds another blob.
  std::filesystem::remove(std::filesystem::path(*path).parent_path(), ec);
  return bytes;
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
