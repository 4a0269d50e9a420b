#ifndef STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_STATE_H_
#define STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_STATE_H_

// What the dashboard shows, read from the store: the JSON of /api/state and
// the snapshot files of /api/snapshot/RUN.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"

namespace stylesweep {

struct DashboardOptions {
  int64_t now_ms = 0;
  int64_t agent_lost_after_ms = 0;  // an agent silent this long is lost (the lease length)
};

// The dashboard's state:
//   {"now_ms",
//    "totals": {"agents": {state: n}, "runs": {STATE: n}, "steps_per_second"},
//    "sweeps": [{id, name, method, paused, created_ms, runs, finished, counts: {STATE: n}}]  (newest first),
//    "running": [{run_id, sweep_id, sweep, index, attempt, agent, step, steps, steps_per_second,
//                 loss: {total, content, style, tv} | null, eval_step | null, eval: EVAL | null,
//                 snapshot: URL | null, snapshot_step}],
//    "agents": [{name, host, device, device_name, memory_bytes, state, run_id, step, steps,
//                steps_per_second, heartbeat_age_ms, failures, consecutive_failures, runs_finished,
//                quarantine_reason}]}
// Running runs are those the agents report holding (one GetRun each), so the
// cost grows with agents and sweeps, not with runs. Fails only when the store
// does.
absl::StatusOr<nlohmann::json> DashboardState(Store& store, const DashboardOptions& options);

// A run's latest evaluation as the dashboard shows it (EVAL above):
// {score, style, content, tv, style_norm, content_norm, tv_norm, ssim, color}
// (common/evaluation.h), or null when it has none yet.
nlohmann::json EvaluationJson(const RunRecord& run);

// The file of a run's snapshot at `step`, or of its current attempt's latest
// snapshot when `step` is nullopt, as an absolute path under
// `artifacts_dir`. NotFound for an unknown run or one without that snapshot;
// PermissionDenied for a recorded path that leads outside `artifacts_dir`
// (nothing outside it is ever served).
absl::StatusOr<std::string> SnapshotFile(Store& store, const std::string& artifacts_dir, int64_t run_id,
                                         std::optional<int> step);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_DASHBOARD_STATE_H_
