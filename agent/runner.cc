#include "agent/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <filesystem>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

  // Sends what is pending; on failure keeps it for the next flush. Rows the
  // coordinator refuses are dropped (the first refusal is logged). Returns
  // what the coordinator said about the run (kContinue when nothing was
  // sent).
  absl::StatusOr<RunVerdict> Flush(CoordinatorClient& client, const std::string& agent, int64_t run_id,
                                   int attempt) {
    std::lock_guard<std::mutex> flush_lock(flush_mu_);
    std::vector<StepMetrics> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(pending_);
    }
    if (batch.empty()) return RunVerdict::kContinue;
    absl::StatusOr<MetricsReply> reply = client.ReportMetrics(agent, run_id, attempt, batch);
    if (!reply.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.insert(pending_.begin(), batch.begin(), batch.end());
      return reply.status();
    }
    if (!reply->refused_steps.empty() && !warned_refused_) {
      warned_refused_ = true;
      spdlog::warn("the coordinator refused the losses of run {} at step(s) {}; dropped, as sending them again "
                   "cannot help",
                   run_id, absl::StrJoin(reply->refused_steps, ", "));
    }
    return reply->verdict;
  }

 private:
  std::mutex flush_mu_;  // one flush at a time keeps rows in step order
  std::mutex mu_;
  std::vector<StepMetrics> pending_;
  bool warned_refused_ = false;  // guarded by flush_mu_
};

// Snapshots in step order, held while the coordinator cannot take them.
class SnapshotQueue {
 public:
  void Add(int step, bool final, std::string png) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({step, final, std::move(png)});
  }

  bool empty() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.empty();
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
  }

  // Sends what is pending, oldest first; stops at the first failure, which
  // keeps that snapshot and the later ones for the next flush. A snapshot
  // the coordinator refuses as such (not a PNG, a step outside the run,
  // other bytes already stored at its step) is logged and dropped: sending
  // it again would be refused again.
  absl::Status Flush(CoordinatorClient& client, const std::string& agent, int64_t run_id, int attempt) {
    std::lock_guard<std::mutex> flush_lock(flush_mu_);
    for (;;) {
      Pending next;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (pending_.empty()) return absl::OkStatus();
        next = pending_.front();
      }
      if (absl::Status s = client.UploadSnapshot(agent, run_id, attempt, next.step, next.final, next.png); !s.ok()) {
        if (!absl::IsInvalidArgument(s) && !absl::IsAlreadyExists(s)) return s;
        spdlog::warn("the coordinator refused the {}image of run {} at step {}: {}; dropped", next.final ? "final " : "",
                     run_id, next.step, std::string(s.message()));
      }
      std::lock_guard<std::mutex> lock(mu_);
      pending_.pop_front();
    }
  }

 private:
  struct Pending {
    int step = 0;
    bool final = false;
    std::string png;
  };
  std::mutex flush_mu_;
  std::mutex mu_;
  std::deque<Pending> pending_;
};

// The coordinator is away (restarting, or the network is down): what it
// could not take is kept and sent again.
bool Transient(const absl::Status& s) { return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s); }

// The coordinator says the run is not this agent's to act on: its attempt
// ended (FAILED_PRECONDITION) or never was ours (PERMISSION_DENIED). The run
// stops, and nothing about it is sent again.
bool NotOurs(const absl::Status& s) { return absl::IsFailedPrecondition(s) || absl::IsPermissionDenied(s); }

}  // namespace

Runner::Runner(CoordinatorClient& client, Engine& engine, RunnerOptions options)
    : client_(client), engine_(engine), options_(std::move(options)) {}

bool Runner::WaitFor(int64_t ms, bool wake_on_drain) {
  std::unique_lock<std::mutex> lock(mu_);
  auto woken = [&] { return stopping_.load() || (wake_on_drain && draining_.load()); };
  cv_.wait_for(lock, std::chrono::milliseconds(ms), woken);
  return !woken();
}

void Runner::Stop() {
  stopping_ = true;
  cv_.notify_all();
}

namespace {
int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Runner::Drain(int64_t timeout_ms) {
  if (timeout_ms >= 0) drain_deadline_ms_ = SteadyMillis() + timeout_ms;
  draining_ = true;
  cv_.notify_all();
}

bool Runner::Cancelling() const {
  return stopping_.load() || (draining_.load() && SteadyMillis() >= drain_deadline_ms_.load());
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
    if (absl::IsAlreadyExists(settings.status())) {
      // Our name is held by a live agent with another credential (or our own
      // earlier registration, under a token since replaced): it frees once
      // that agent is silent for a lease.
      spdlog::warn("{}; retrying", std::string(settings.status().message()));
    } else if (!absl::IsUnavailable(settings.status()) && !absl::IsDeadlineExceeded(settings.status())) {
      return settings.status();
    } else {
      spdlog::warn("{}; retrying", std::string(settings.status().message()));
    }
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
  if (absl::Status s = WriteFileAtomically(path, *data, FileAccess::kOwnerOnly); !s.ok()) return s;
  return path;
}

absl::Status Runner::Deliver(const std::string& what, const std::function<absl::Status()>& send) {
  int64_t backoff_ms = 200;
  std::mt19937_64 rng{std::random_device{}()};
  bool warned = false;
  for (;;) {
    absl::Status s = send();
    if (!Transient(s)) {
      if (warned && s.ok()) spdlog::info("coordinator back: delivered {}", what);
      return s;
    }
    if (!warned) {
      spdlog::warn("coordinator unreachable ({}): holding {} until it is back", std::string(s.message()), what);
      warned = true;
    }
    // A draining agent still delivers; only Stop() gives up.
    if (!WaitFor(std::uniform_int_distribution<int64_t>(backoff_ms / 2, backoff_ms)(rng), /*wake_on_drain=*/false)) {
      return s;
    }
    // Never much slower than the heartbeat: once the coordinator is back the
    // results should land before anyone wonders where they are.
    backoff_ms = std::min({backoff_ms * 2, options_.max_backoff_ms, std::max<int64_t>(200, settings_.heartbeat_ms)});
  }
}

absl::StatusOr<bool> Runner::RunOne() {
  const std::string& agent = options_.identity.name;
  auto lease = client_.Lease(agent);
  if (!lease.ok()) return lease.status();
  if (lease->quarantined != quarantined_) {
    if (!lease->quarantined.empty()) {
      spdlog::error("quarantined by the coordinator: {}. No runs until `stylesweep agents --release {}`",
                    lease->quarantined, agent);
    } else {
      spdlog::info("released from quarantine: taking runs again");
    }
    quarantined_ = lease->quarantined;
  }
  if (!lease->run.has_value()) return false;
  const RunLease run = *lease->run;
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
  SnapshotQueue snapshots;
  // A snapshot the coordinator refused for a reason other than being away
  // (its disk is full, say): the run fails with it.
  std::mutex error_mu;
  absl::Status snapshot_error;
  // Set while the coordinator does not answer: the engine's thread then only
  // queues, and the heartbeat thread, which keeps knocking, sends the queue
  // once it answers again.
  std::atomic<bool> away{false};
  // What a failed call about the run says about it.
  auto note_status = [&](const absl::Status& s) {
    if (Transient(s)) away = true;
    if (!NotOurs(s)) return;
    if (absl::IsPermissionDenied(s) && !revoked.load()) {
      spdlog::error("the coordinator says run {} attempt {} is not held by agent '{}' ({}); stopping it", run.run_id,
                    run.attempt, agent, std::string(s.message()));
    }
    revoked = true;
  };
  auto note = [&](const absl::StatusOr<RunVerdict>& verdict) {
    note_status(verdict.status());
    if (!verdict.ok()) return;
    if (*verdict == RunVerdict::kStop) revoked = true;
    if (*verdict == RunVerdict::kPrune) pruned = true;
  };
  std::atomic<int> current_step{0};
  // Smoothed over recent steps, for `stylesweep agents`.
  std::atomic<double> steps_per_second{0.0};
  std::mutex beat_mu;
  std::condition_variable beat_cv;
  bool done = false;
  // Heartbeats renew the lease, and carry what the engine's thread queued,
  // from the lease until the run's results are delivered (or it is dropped).
  std::thread heartbeat([&] {
    std::unique_lock<std::mutex> lock(beat_mu);
    while (!done) {
      beat_cv.wait_for(lock, std::chrono::milliseconds(settings_.heartbeat_ms));
      if (done) break;
      lock.unlock();
      RunProgress progress{run.run_id,     run.attempt,       current_step.load(),
                           run.params.steps, steps_per_second.load(), draining_.load()};
      auto verdict = client_.Heartbeat(agent, progress);
      if (verdict.ok()) {
        if (away.exchange(false)) spdlog::info("coordinator back; sending what run {} held", run.run_id);
        note(verdict);
      } else if (Transient(verdict.status())) {
        if (!away.exchange(true)) {
          spdlog::warn("coordinator unreachable ({}): run {} goes on, its results held until it is back",
                       std::string(verdict.status().message()), run.run_id);
        }
      } else if (NotOurs(verdict.status())) {
        note(verdict);
      } else {
        spdlog::warn("heartbeat failed: {}", std::string(verdict.status().message()));
      }
      if (!away && !revoked) note(metrics.Flush(client_, agent, run.run_id, run.attempt));
      if (!away && !revoked && !snapshots.empty()) {
        absl::Status sent = snapshots.Flush(client_, agent, run.run_id, run.attempt);
        note_status(sent);
        if (!sent.ok() && !Transient(sent) && !revoked) {
          std::lock_guard<std::mutex> error_lock(error_mu);
          if (snapshot_error.ok()) snapshot_error = sent;
        }
      }
      lock.lock();
    }
  });

  struct StopHeartbeat {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& done;
    std::thread& thread;
    ~StopHeartbeat() {
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_all();
      thread.join();
    }
  } stop_heartbeat{beat_mu, beat_cv, done, heartbeat};

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
    std::vector<int> decision_steps = run.report_steps;
    std::sort(decision_steps.begin(), decision_steps.end());
    EngineCallbacks callbacks;
    // Runs are compared at the rungs, so their images are evaluated there.
    callbacks.evaluate_at = [&decision_steps](int step) {
      return std::binary_search(decision_steps.begin(), decision_steps.end(), step);
    };
    callbacks.on_step = [&](const StepMetrics& m) {
      current_step = m.step;
      if (m.step > 0 && m.step_seconds > 0) {
        const double rate = 1.0 / m.step_seconds;
        const double before = steps_per_second.load();
        steps_per_second = before == 0 ? rate : 0.8 * before + 0.2 * rate;
      }
      metrics.Add(m);
      const bool decision_step = std::binary_search(decision_steps.begin(), decision_steps.end(), m.step);
      if (!away && !revoked &&
          (decision_step || (options_.report_every_steps > 0 && m.step % options_.report_every_steps == 0))) {
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
      {
        std::lock_guard<std::mutex> lock(snapshot_mu);
        last_png = png;
        last_png_step = step;
      }
      snapshots.Add(step, step == params.steps, png);
      if (away || revoked) return absl::OkStatus();
      absl::Status s = snapshots.Flush(client_, agent, run.run_id, run.attempt);
      note_status(s);
      // Held for later while the coordinator is away; the run goes on.
      return Transient(s) ? absl::OkStatus() : s;
    };
    callbacks.should_stop = [&] {
      std::lock_guard<std::mutex> lock(error_mu);
      return Cancelling() || revoked.load() || pruned.load() || !snapshot_error.ok();
    };
    result = engine_.Run(params, callbacks);
    {
      std::lock_guard<std::mutex> lock(error_mu);
      if (absl::IsCancelled(result) && !snapshot_error.ok()) result = snapshot_error;
    }
  }

  if (revoked) {
    spdlog::warn("run {} attempt {} was stopped by the coordinator (it is no longer this agent's); dropped",
                 run.run_id, run.attempt);
    return true;
  }
  // The run's losses, images and outcome, in that order, each retried while
  // the coordinator is away. OK when delivered; Aborted when the coordinator
  // says the run is no longer ours (nothing to keep then).
  auto deliver_results = [&](const RunEnd& end) -> absl::Status {
    const RunState state = end.state;
    const std::string what = absl::StrCat("the results of run ", run.run_id);
    // What failed to land is not retried; a diverged run's images are its
    // result, though.
    if (state == RunState::kFailed && !end.diverged) snapshots.Clear();
    bool stopped = false;
    absl::Status s = Deliver(what, [&] {
      absl::StatusOr<RunVerdict> verdict = metrics.Flush(client_, agent, run.run_id, run.attempt);
      if (verdict.ok() && *verdict == RunVerdict::kStop) stopped = true;
      return verdict.status();
    });
    if (s.ok() && stopped) s = absl::FailedPreconditionError("the coordinator ended the run");
    if (s.ok()) {
      s = Deliver(what, [&] { return snapshots.Flush(client_, agent, run.run_id, run.attempt); });
      if (!s.ok() && end.diverged && !Transient(s) && !NotOurs(s)) {
        // The divergence itself must be recorded, or another agent would
        // repeat the run only to diverge again.
        spdlog::warn("run {}: its last finite image could not be stored ({}); reporting the divergence without it",
                     run.run_id, std::string(s.message()));
        snapshots.Clear();
        s = absl::OkStatus();
      }
    }
    if (s.ok()) s = Deliver(what, [&] { return client_.Complete(agent, run.run_id, run.attempt, end); });
    if (absl::IsPermissionDenied(s)) {
      spdlog::error("the coordinator says run {} attempt {} is not held by agent '{}' ({}); its results are dropped",
                    run.run_id, run.attempt, agent, std::string(s.message()));
      return absl::AbortedError("dropped");
    }
    if (absl::IsFailedPrecondition(s)) {
      spdlog::warn("run {} attempt {} was stopped by the coordinator before its results arrived; dropped",
                   run.run_id, run.attempt);
      return absl::AbortedError("dropped");
    }
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("could not report the end of run ", run.run_id, ": ", s.message()));
    }
    return s;
  };
  if (pruned && absl::IsCancelled(result)) {
    // Early termination: the losses so far and the latest image are the
    // run's result.
    if (last_png_step >= 0) snapshots.Add(last_png_step, /*final=*/true, last_png);
    if (absl::Status s = deliver_results(RunEnd{RunState::kPruned, "", "", false}); !s.ok()) {
      return absl::IsAborted(s) ? absl::StatusOr<bool>(true) : s;
    }
    spdlog::info("run {} attempt {} PRUNED by early termination", run.run_id, run.attempt);
    return true;
  }
  if (Cancelling() && absl::IsCancelled(result)) {
    // Handed back: the coordinator queues the run again at once, with the
    // losses sent so far kept under this attempt. If it cannot be told, the
    // lease runs out and the run is retried all the same. While it is
    // away, trying would only hold up a stopping agent.
    const std::string reason = stopping_ ? "the agent was stopped" : "the agent's drain timeout passed";
    if (away) {
      spdlog::warn("run {} attempt {} interrupted ({}); the coordinator is unreachable and will re-queue it when its "
                   "lease runs out",
                   run.run_id, run.attempt, reason);
      return true;
    }
    (void)metrics.Flush(client_, agent, run.run_id, run.attempt);
    if (absl::Status s = client_.Release(agent, run.run_id, run.attempt, reason); s.ok()) {
      spdlog::warn("run {} attempt {} handed back ({}); it will run again elsewhere", run.run_id, run.attempt, reason);
    } else if (absl::IsPermissionDenied(s) || absl::IsFailedPrecondition(s)) {
      spdlog::warn("run {} attempt {} interrupted ({}); it is no longer this agent's, nothing to hand back ({})",
                   run.run_id, run.attempt, reason, std::string(s.message()));
    } else {
      spdlog::warn("run {} attempt {} interrupted ({}); the coordinator will re-queue it when its lease runs out ({})",
                   run.run_id, run.attempt, reason, std::string(s.message()));
    }
    return true;
  }
  // A prune verdict on this last report comes too late to save anything:
  // the run ends as it is.
  const RunState state = result.ok() ? RunState::kSucceeded : RunState::kFailed;
  const std::optional<int> diverged_at = DivergedStep(result);
  RunEnd end{state, std::string(result.message()), "", IsOutOfMemory(result), diverged_at.has_value(),
             diverged_at.value_or(0)};
  // A diverged run's result is its last finite image, which the engine
  // handed over last.
  if (diverged_at.has_value() && last_png_step >= 0 && last_png_step < *diverged_at) {
    snapshots.Add(last_png_step, /*final=*/true, last_png);
  }
  if (!result.ok()) {
    spdlog::error("run {} failed: {}", run.run_id, end.error);
    if (options_.log_tail) end.log_tail = options_.log_tail();
  }
  if (absl::Status s = deliver_results(end); !s.ok()) {
    return absl::IsAborted(s) ? absl::StatusOr<bool>(true) : s;
  }
  spdlog::info("run {} attempt {} {}", run.run_id, run.attempt, std::string(RunStateName(state)));
  return true;
}

absl::Status Runner::Serve() {
  if (absl::Status s = Register(); !s.ok()) return absl::IsCancelled(s) ? absl::OkStatus() : s;
  int64_t backoff_ms = 200;
  std::mt19937_64 rng{std::random_device{}()};
  while (!stopping_ && !draining_) {
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
