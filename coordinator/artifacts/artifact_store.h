#ifndef STYLESWEEP_COORDINATOR_ARTIFACTS_ARTIFACT_STORE_H_
#define STYLESWEEP_COORDINATOR_ARTIFACTS_ARTIFACT_STORE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

// Files the coordinator keeps under its artifacts directory:
//   blobs/<hex>                  input images, content-addressed, as submitted
//   <sweep>/run-<index>/attempt-<n>/step-<step>.png and final.png
// Every write is atomic, so a crash never leaves a half-written file under a
// real name. Paths handed out are relative to the directory. Thread-safe.
class ArtifactStore {
 public:
  explicit ArtifactStore(std::string root);

  const std::string& root() const { return root_; }

  // Stores bytes by content; returns "sha256:<hex>". Storing twice is free.
  absl::StatusOr<std::string> PutBlob(const std::string& data);
  absl::StatusOr<std::string> ReadBlob(const std::string& blob_id) const;

  // Where a snapshot is stored, relative to the directory.
  static std::string SnapshotPath(const std::string& sweep_dir, int run_index, int attempt, int step, bool final);

  // A file written whole under a temporary name beside `relative`, moved to
  // `relative` by Commit. Destroyed uncommitted, it removes itself: a write
  // that is refused leaves nothing behind.
  class StagedFile {
   public:
    StagedFile(StagedFile&& other) noexcept;
    StagedFile& operator=(StagedFile&&) = delete;
    ~StagedFile();
    absl::Status Commit();

   private:
    friend class ArtifactStore;
    StagedFile(std::string temporary, std::string target)
        : temporary_(std::move(temporary)), target_(std::move(target)) {}
    std::string temporary_;  // empty once committed or moved from
    std::string target_;
  };
  absl::StatusOr<StagedFile> Stage(const std::string& relative, const std::string& data);

  // Removes a sweep's directory (see SweepDir) and what it holds; returns
  // the bytes freed. A directory that does not exist frees 0.
  absl::StatusOr<int64_t> RemoveSweepDir(const std::string& sweep_dir);
  // Removes a blob; returns the bytes freed (0 when it was not there).
  absl::StatusOr<int64_t> RemoveBlob(const std::string& blob_id);

  // Reads a file by its path relative to the directory (a snapshot's path).
  // InvalidArgument for an absolute path or one that leads outside the
  // directory (through ".." or a symbolic link); NotFound if it is missing.
  absl::StatusOr<std::string> ReadArtifact(const std::string& relative_path) const;
  // The real path of that file, with the same checks (it need not exist).
  absl::StatusOr<std::string> ResolveArtifact(const std::string& relative_path) const;

  // A directory name for a sweep: "<id>-<name>", the name made filesystem-safe.
  static std::string SweepDir(int64_t sweep_id, const std::string& name);

 private:
  absl::StatusOr<std::string> BlobPath(const std::string& blob_id) const;

  std::string root_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_ARTIFACTS_ARTIFACT_STORE_H_
