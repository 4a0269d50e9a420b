#ifndef STYLESWEEP_AGENT_RUNNER_H_
#define STYLESWEEP_AGENT_RUNNER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "agent/client/coordinator_client.h"
#include "agent/engine/engine.h"

namespace stylesweep {

struct RunnerOptions {
  AgentIdentity identity;
  std::string cache_dir;        // where fetched input images are kept
  int64_t idle_poll_ms = 1000;  // wait between lease requests when idle
  int64_t max_backoff_ms = 10000;
  // Also send losses from the engine's thread every N steps (0: only with
  // each heartbeat). Early termination decides at given steps, so with fast
  // steps and a slow heartbeat a run may otherwise finish before it hears it
  // should stop; each report costs the engine a round trip.
  int report_every_steps = 0;
  // The agent's latest log lines, sent with a failed run so that whoever
  // reads the failure sees what led to it. Null: none are sent.
  std::function<std::string()> log_tail;
};

// An agent's work loop: lease a run, fetch its images, run the engine while
// heartbeating and streaming losses and snapshots, report the outcome, repeat.
// Thread-compatible: one thread calls Serve or RunOne; Stop may be called from
// any thread.
class Runner {
 public:
  Runner(CoordinatorClient& client, Engine& engine, RunnerOptions options);

  // Registers with the coordinator (retrying until it answers or Stop).
  absl::Status Register();

  // Leases and executes one run. Returns false when nothing was queued. The
  // run's own failure (a bad image, say) is reported to the coordinator and is
  // not an error here; an error means the coordinator could not be told.
  absl::StatusOr<bool> RunOne();

  // Registers, then runs until Stop(). Waits idle_poll_ms when idle and backs
  // off (with jitter) while the coordinator is unreachable.
  absl::Status Serve();

  // Asks Serve to return now: a run in progress is cancelled and handed
  // back to the coordinator (its losses so far kept), which queues it again.
  void Stop();

  // Asks Serve to return once the run in progress has ended (at once when
  // idle), taking no new run. With `timeout_ms` >= 0, a run still going
  // that long after the call is cancelled and handed back as by Stop().
  void Drain(int64_t timeout_ms = -1);

 private:
  // Waits up to `ms` or until Stop() (or Drain(), with `wake_on_drain`);
  // returns false if woken so.
  bool WaitFor(int64_t ms, bool wake_on_drain = true);
  absl::StatusOr<std::string> CachedBlob(const std::string& blob_id);
  // Calls `send` until it succeeds or fails for a reason other than the
  // coordinator being unreachable, backing off with jitter in between; gives
  // up (returning the last error) only when stopping. `what` names what is
  // held, for the log.
  absl::Status Deliver(const std::string& what, const std::function<absl::Status()>& send);

  CoordinatorClient& client_;
  Engine& engine_;
  RunnerOptions options_;
  AgentSettings settings_;
  bool Cancelling() const;

  std::string quarantined_;  // the coordinator's reason, while it refuses us work
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  // steady_clock milliseconds after which a draining agent cancels its run
  // (INT64_MAX: never).
  std::atomic<int64_t> drain_deadline_ms_{INT64_MAX};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_RUNNER_H_
