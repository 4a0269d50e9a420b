#include "agent/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/hash.h"

namespace stylesweep {
namespace {

// Sends losses from the engine's callback thread in batches, off the hot loop:
// the heartbeat thread flushes them with each beat, and the runner once more
// at the end.
class MetricsBuffer {
 public:
  void Add(const StepMetrics& m) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(m);
  }

  // Sends what is pending; on failure keeps it for the next flush. Returns
  // what the coordinator said about the run (kContinue when nothing was sent).
  absl::StatusOr<RunVerdict> Flush(CoordinatorClient& client, const std::string& agent, int64_t run_id,
                                   int attempt) {
    std::lock_guard<std::mutex> flush_lock(flush_mu_);
    std::vector<StepMetrics> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(pending_);
    }
    if (batch.empty()) return RunVerdict::kContinue;
    absl::StatusOr<RunVerdict> verdict = client.ReportMetrics(agent, run_id, attempt, batch);
    if (!verdict.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.insert(pending_.begin(), batch.begin(), batch.end());
    }
    return verdict;
  }

 private:
  std::mutex flush_mu_;  // one flush at a time keeps rows in step order
  std::mutex mu_;
  std::vector<StepMetrics> pending_;
};

}  // namespace

Runner::Runner(CoordinatorClient& client, Engine& engine, RunnerOptions options)
    : client_(client), engine_(engine), options_(std::move(options)) {}

bool Runner::WaitFor(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_.load(); });
  return !stopping_;
}

void Runner::Stop() {
  stopping_ = true;
  cv_.notify_all();
}

absl::Status Runner::Register() {
  int64_t backoff_ms = 200;
  std::mt19937_64 rng{std::random_device{}()};
  for (;;) {
    auto settings = client_.Register(options_.identity);
    if (settings.ok()) {
      settings_ = *settings;
      spdlog::info("registered as '{}' ({})", options_.identity.name, options_.identity.description);
      return absl::OkStatus();
    }
    if (!absl::IsUnavailable(settings.status()) && !absl::IsDeadlineExceeded(settings.status())) {
      return settings.status();
    }
    spdlog::warn("coordinator unreachable ({}); retrying", std::string(settings.status().message()));
    if (!WaitFor(std::uniform_int_distribution<int64_t>(backoff_ms / 2, backoff_ms)(rng))) {
      return absl::CancelledError("stopped before registering");
    }
    backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
  }
}

absl::StatusOr<std::string> Runner::CachedBlob(const std::string& blob_id) {
  const std::string hex = absl::StartsWith(blob_id, "sha256:") ? blob_id.substr(7) : blob_id;
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("malformed image reference '", blob_id, "'"));
  }
  const std::string path = (std::filesystem::path(options_.cache_dir) / "blobs" / hex).string();
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return path;
  auto data = client_.FetchBlob(blob_id);
  if (!data.ok()) return data.status();
  if (Sha256Hex(*data) != hex) {
    return absl::DataLossError(absl::StrCat("image ", blob_id, " arrived corrupted (its hash does not match)"));
  }
  if (absl::Status s = WriteFileAtomically(path, *data); !s.ok()) return s;
  return path;
}

absl::StatusOr<bool> Runner::RunOne() {
  const std::string& agent = options_.identity.name;
  auto lease = client_.Lease(agent);
  if (!lease.ok()) return lease.status();
  if (!lease->has_value()) return false;
  const RunLease run = **lease;
  spdlog::info("run {} attempt {}: {} steps at {} px", run.run_id, run.attempt, run.params.steps,
               run.params.image_size);

  RunParams params = run.params;
  absl::Status result;
  std::atomic<bool> revoked{false};
  std::atomic<bool> pruned{false};
  // The latest image (a snapshot, or the image where the run stopped), sent
  // as the final image when the run is pruned.
  std::mutex snapshot_mu;
  std::string last_png;
  int last_png_step = -1;
  MetricsBuffer metrics;
  auto note = [&](const absl::StatusOr<RunVerdict>& verdict) {
    if (absl::IsFailedPrecondition(verdict.status())) revoked = true;
    if (!verdict.ok()) return;
    if (*verdict == RunVerdict::kStop) revoked = true;
    if (*verdict == RunVerdict::kPrune) pruned = true;
  };
  absl::Status fetched;
  params.ForEachImage([&](std::string& ref) {
    if (!fetched.ok()) return;
    auto path = CachedBlob(ref);
    if (path.ok()) {
      ref = *path;
    } else {
      fetched = path.status();
    }
  });
  if (!fetched.ok()) {
    result = fetched;
    // A coordinator that is away is no fault of the run: leave it to the
    // lease, which re-queues it.
    if (absl::IsUnavailable(result) || absl::IsDeadlineExceeded(result)) return result;
  } else {
    std::atomic<int> current_step{0};
    std::mutex beat_mu;
    std::condition_variable beat_cv;
    bool done = false;
    std::thread heartbeat([&] {
      std::unique_lock<std::mutex> lock(beat_mu);
      while (!done) {
        beat_cv.wait_for(lock, std::chrono::milliseconds(settings_.heartbeat_ms));
        if (done) break;
        lock.unlock();
        auto verdict = client_.Heartbeat(agent, run.run_id, run.attempt, current_step);
        if (verdict.ok()) {
          note(verdict);
        } else {
          spdlog::warn("heartbeat failed: {}", std::string(verdict.status().message()));
        }
        note(metrics.Flush(client_, agent, run.run_id, run.attempt));
        lock.lock();
      }
    });

    std::vector<int> decision_steps = run.report_steps;
    std::sort(decision_steps.begin(), decision_steps.end());
    EngineCallbacks callbacks;
    callbacks.on_step = [&](const StepMetrics& m) {
      current_step = m.step;
      metrics.Add(m);
      const bool decision_step = std::binary_search(decision_steps.begin(), decision_steps.end(), m.step);
      if (decision_step || (options_.report_every_steps > 0 && m.step % options_.report_every_steps == 0)) {
        note(metrics.Flush(client_, agent, run.run_id, run.attempt));
      }
    };
    callbacks.on_stopped = [&](int step, const std::string& png) {
      std::lock_guard<std::mutex> lock(snapshot_mu);
      if (step > last_png_step) {
        last_png = png;
        last_png_step = step;
      }
    };
    callbacks.on_snapshot = [&](int step, const std::string& png) -> absl::Status {
      absl::Status s = client_.UploadSnapshot(agent, run.run_id, run.attempt, step, step == params.steps, png);
      if (absl::IsFailedPrecondition(s)) revoked = true;
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(snapshot_mu);
        last_png = png;
        last_png_step = step;
      }
      return s;
    };
    callbacks.should_stop = [&] { return stopping_.load() || revoked.load() || pruned.load(); };
    result = engine_.Run(params, callbacks);

    {
      std::lock_guard<std::mutex> lock(beat_mu);
      done = true;
    }
    beat_cv.notify_all();
    heartbeat.join();
  }

  if (revoked) {
    spdlog::warn("run {} attempt {} was taken away by the coordinator; dropped", run.run_id, run.attempt);
    return true;
  }
  if (pruned && absl::IsCancelled(result)) {
    // Early termination: the losses so far and the latest image are the
    // run's result.
    if (absl::StatusOr<RunVerdict> sent = metrics.Flush(client_, agent, run.run_id, run.attempt); !sent.ok()) {
      return absl::Status(sent.status().code(), absl::StrCat("could not report losses of run ", run.run_id, ": ",
                                                             sent.status().message()));
    }
    if (last_png_step >= 0) {
      if (absl::Status s = client_.UploadSnapshot(agent, run.run_id, run.attempt, last_png_step, /*final=*/true,
                                                  last_png);
          !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("could not send the final image of run ", run.run_id, ": ",
                                                   s.message()));
      }
    }
    if (absl::Status s = client_.Complete(agent, run.run_id, run.attempt, RunState::kPruned, ""); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("could not report the end of run ", run.run_id, ": ", s.message()));
    }
    spdlog::info("run {} attempt {} PRUNED by early termination", run.run_id, run.attempt);
    return true;
  }
  if (stopping_ && absl::IsCancelled(result)) {
    // Not reported: the lease runs out and the coordinator hands the run to
    // another agent, with the losses sent so far kept under this attempt.
    (void)metrics.Flush(client_, agent, run.run_id, run.attempt);
    spdlog::warn("run {} attempt {} interrupted by shutdown; it will be retried elsewhere", run.run_id, run.attempt);
    return true;
  }
  // A prune verdict on this last report comes too late to save anything:
  // the run ends as it is.
  if (absl::StatusOr<RunVerdict> sent = metrics.Flush(client_, agent, run.run_id, run.attempt); !sent.ok()) {
    return absl::Status(sent.status().code(), absl::StrCat("could not report losses of run ", run.run_id, ": ",
                                                           sent.status().message()));
  }
  const RunState state = result.ok() ? RunState::kSucceeded : RunState::kFailed;
  if (!result.ok()) spdlog::error("run {} failed: {}", run.run_id, std::string(result.message()));
  if (absl::Status s = client_.Complete(agent, run.run_id, run.attempt, state, std::string(result.message()));
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("could not report the end of run ", run.run_id, ": ", s.message()));
  }
  spdlog::info("run {} attempt {} {}", run.run_id, run.attempt, std::string(RunStateName(state)));
  return true;
}

absl::Status Runner::Serve() {
  if (absl::Status s = Register(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
  int64_t backoff_ms = 200;
  std::mt19937_64 rng{std::random_device{}()};
  while (!stopping_) {
    auto worked = RunOne();
    if (worked.ok()) {
      backoff_ms = 200;
      if (!*worked && !WaitFor(options_.idle_poll_ms)) break;
      continue;
    }
    if (absl::IsNotFound(worked.status())) {
      // The coordinator does not know us (a new database): register again.
      if (absl::Status s = Register(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
      continue;
    }
    if (absl::IsUnauthenticated(worked.status()) || absl::IsPermissionDenied(worked.status())) {
      return worked.status();
    }
    spdlog::warn("{}; retrying", std::string(worked.status().message()));
    if (!WaitFor(std::uniform_int_distribution<int64_t>(backoff_ms / 2, backoff_ms)(rng))) break;
    backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
  }
  return absl::OkStatus();
}

}  // namespace stylesweep
