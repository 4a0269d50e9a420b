#include "coordinator/scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "common/image_header.h"
#include "common/run_params.h"
#include "common/sweep_spec.h"
#include "coordinator/scheduler/early_stop.h"
#include "coordinator/scheduler/search/tpe.h"
#include "nlohmann/json.hpp"

namespace stylesweep {

Scheduler::Scheduler(Store& store, ArtifactStore& artifacts, const Clock& clock, SchedulerOptions options)
    : store_(store), artifacts_(artifacts), clock_(clock), options_(options) {}

namespace {

// The identity of a submission: the YAML text and the bytes of each image it
// names (by the name it uses), so resubmitting the same file with the same
// images is recognised, and editing either is not a duplicate.
std::string SweepContentHash(const std::string& yaml, const std::map<std::string, std::string>& files) {
  std::string material = absl::StrCat("yaml\n", yaml.size(), "\n", yaml);
  for (const auto& [name, bytes] : files) {  // std::map: sorted by name
    absl::StrAppend(&material, "image\n", name.size(), "\n", name, Sha256Hex(bytes), "\n");
  }
  return Sha256Hex(material);
}

// A seed below 2^63 (SQLite integers are signed) from the content hash, so
// that the same sweep draws the same runs unless search_seed says otherwise.
uint64_t SeedFromHash(const std::string& hex) {
  uint64_t seed = 0;
  for (size_t i = 0; i < 16 && i < hex.size(); ++i) {
    const char c = hex[i];
    seed = (seed << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return seed & 0x7fffffffffffffffULL;
}

// A sweep's early termination rule and the objective it compares, from the
// stored spec; nullopt when the sweep has none.
struct StoppingRule {
  EarlyTerminate rule;
  SweepSpec objective;  // only the metric and goal matter
};

std::optional<StoppingRule> StoppingRuleOf(const SweepRecord& sweep) {
  const nlohmann::json spec_json = nlohmann::json::parse(sweep.spec_json, nullptr, /*allow_exceptions=*/false);
  if (!spec_json.is_object() || !spec_json.contains("early_terminate")) return std::nullopt;
  const nlohmann::json& et = spec_json["early_terminate"];
  StoppingRule stopping;
  stopping.rule.type = et.value("type", "");
  stopping.rule.min_iter = et.value("min_iter", 0);
  stopping.rule.eta = et.value("eta", 3);
  stopping.objective = SweepSpec::ObjectiveFromJson(spec_json);
  return stopping;
}

NewRun ToNewRun(int index, const RunParams& params, const std::string& point_json) {
  return NewRun{index, params.ToJson().dump(), params.Hash(), point_json};
}

// The spec of a stored sweep, with its images mapped to their blob ids again.
absl::StatusOr<SweepSpec> StoredSpec(const SweepRecord& sweep) {
  auto spec = ParseSweep(sweep.yaml, sweep.source);
  if (!spec.ok()) return spec.status();
  const nlohmann::json stored = nlohmann::json::parse(sweep.spec_json, nullptr, /*allow_exceptions=*/false);
  std::map<std::string, std::string> ids_by_name;
  if (stored.is_object() && stored.contains("images") && stored["images"].is_object()) {
    for (const auto& [id, name] : stored["images"].items()) {
      if (name.is_string()) ids_by_name[name.get<std::string>()] = id;
    }
  }
  absl::Status mapped = spec->MapImages([&](const std::string& ref) -> absl::StatusOr<std::string> {
    auto it = ids_by_name.find(ref);
    if (it == ids_by_name.end()) {
      return absl::DataLossError(absl::StrCat("sweep ", sweep.id, ": image '", ref, "' has no stored blob"));
    }
    return it->second;
  });
  if (!mapped.ok()) return mapped;
  const nlohmann::json weights = stored.is_object() && stored.contains("weights_paths") ? stored["weights_paths"]
                                                                                         : nlohmann::json::object();
  mapped = spec->MapWeights([&](const std::string& ref) -> absl::StatusOr<std::string> {
    if (auto it = weights.find(ref); it != weights.end() && it->is_string()) return it->get<std::string>();
    return ref;
  });
  if (!mapped.ok()) return mapped;
  return spec;
}

}  // namespace

struct Scheduler::SweepFacts {
  std::string dir;  // ArtifactStore::SweepDir
  std::optional<StoppingRule> stopping;
  std::shared_ptr<const SweepSpec> spec;  // bayes: the spec proposals resolve points with
  nlohmann::json images;                  // blob id -> the name the sweep gave it
};

absl::StatusOr<SubmitResult> Scheduler::Submit(const std::string& yaml, const std::string& source,
                                               const std::map<std::string, std::string>& files,
                                               SubmitOptions submit) {
  const bool dry_run = submit.dry_run;
  // Sizes first: nothing is parsed, hashed or stored beyond the limits.
  if (absl::Status s = CheckSweepYamlSize(source, yaml.size()); !s.ok()) return s;
  uint64_t image_bytes = 0;
  for (const auto& [name, bytes] : files) {
    if (bytes.size() > kMaxImageBytes) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": image '", name, "' is ", bytes.size(),
                                                     " bytes; an image may be at most ",
                                                     DescribeByteLimit(kMaxImageBytes)));
    }
    image_bytes += bytes.size();
  }
  if (image_bytes > kMaxSubmissionImageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": its images add up to ", image_bytes,
                                                   " bytes; a sweep's images may be at most ",
                                                   DescribeByteLimit(kMaxSubmissionImageBytes), " in all"));
  }
  // Then what each image is, from its header: agents decode these, and an
  // image's decoded size, not its bytes, is what costs them memory.
  for (const auto& [name, bytes] : files) {
    if (absl::Status s = CheckImage(bytes, absl::StrCat(source, ": image '", name, "'")).status(); !s.ok()) {
      return s;
    }
  }
  // Shared with other submissions; a deletion waits (see files_mu_).
  absl::ReaderMutexLock files_lock(&files_mu_);
  auto spec = ParseSweep(yaml, source, SweepLimits{options_.max_runs_per_sweep});
  if (!spec.ok()) return spec.status();

  const std::string content_hash = SweepContentHash(yaml, files);
  if (!submit.allow_duplicate) {
    auto existing = store_.FindSweepByContentHash(content_hash);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return absl::AlreadyExistsError(absl::StrCat(
          source, ": this sweep (the same YAML and the same images) was already submitted as sweep ",
          (*existing)->id, " '", (*existing)->name, "'; submit with --allow-duplicate to run it again"));
    }
  }

  // Images travel with the submission and are stored by content, so agents on
  // other machines need no shared filesystem. The names the user wrote are
  // kept beside the ids for reports.
  nlohmann::json image_names = nlohmann::json::object();
  absl::Status mapped = spec->MapImages([&](const std::string& ref) -> absl::StatusOr<std::string> {
    auto it = files.find(ref);
    if (it == files.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": image '", ref, "' was not sent with the sweep (submit with `stylesweep submit`)"));
    }
    if (it->second.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": image '", ref, "' is empty"));
    auto id = dry_run ? absl::StatusOr<std::string>(absl::StrCat("sha256:", Sha256Hex(it->second)))
                      : artifacts_.PutBlob(it->second);
    if (id.ok()) image_names[*id] = ref;
    return id;
  });
  if (!mapped.ok()) return mapped;
  // Weights stay on the agents' machines; every run names the same absolute
  // path, so agents anywhere read the same file.
  nlohmann::json weights_paths = nlohmann::json::object();
  for (const SweepSpec::FileRef& weights : spec->WeightsRefs()) {
    auto it = submit.weights_paths.find(weights.ref);
    const std::string path = it != submit.weights_paths.end() ? it->second : weights.ref;
    if (!std::filesystem::path(path).is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, weights.line > 0 ? absl::StrCat(":", weights.line) : "", ": ", weights.key, ": weights '",
          weights.ref, "' is a relative path; give an absolute path (the same on every agent) or submit with "
          "`stylesweep submit`, which resolves it against the sweep file"));
    }
    weights_paths[weights.ref] = path;
  }
  mapped = spec->MapWeights([&](const std::string& ref) -> absl::StatusOr<std::string> {
    return weights_paths[ref].get<std::string>();
  });
  if (!mapped.ok()) return mapped;

  const uint64_t seed = spec->has_search_seed ? spec->search_seed : SeedFromHash(content_hash);
  std::vector<NewRun> runs;
  if (spec->method == "grid") {
    auto expanded = spec->Expand();
    if (!expanded.ok()) return expanded.status();
    for (size_t i = 0; i < expanded->size(); ++i) runs.push_back(ToNewRun(static_cast<int>(i), (*expanded)[i], ""));
  } else if (spec->method == "random") {
    // Every draw at once: run i is draw i of the seeded generator, so the
    // sweep's runs are known (and stored) exactly once, in one transaction.
    auto drawn = spec->Draw(seed, 0, static_cast<size_t>(spec->run_cap));
    if (!drawn.ok()) return drawn.status();
    for (size_t i = 0; i < drawn->size(); ++i) runs.push_back(ToNewRun(static_cast<int>(i), (*drawn)[i], ""));
  }  // bayes: proposed one at a time by Lease.

  const int64_t now = clock_.NowMillis();
  NewSweep sweep;
  sweep.name = spec->name;
  sweep.method = spec->method;
  sweep.source = source;
  sweep.yaml = yaml;
  nlohmann::json spec_json = spec->ToJson();
  spec_json["images"] = image_names;
  spec_json["weights_paths"] = weights_paths;
  spec_json["artifacts_dir"] = artifacts_.root();
  spec_json["search_seed"] = seed;
  sweep.spec_json = spec_json.dump();
  sweep.max_attempts = spec->max_attempts;
  sweep.created_ms = now;
  sweep.content_hash = content_hash;
  sweep.search_seed = seed;
  sweep.draws = static_cast<int>(runs.size());
  sweep.run_cap = spec->run_cap;
  sweep.max_concurrent = spec->max_concurrent;

  SubmitResult result;
  result.runs_total = static_cast<int>(runs.size());
  if (dry_run) {
    result.sweep = SweepRecord{0,          sweep.name,         sweep.method, sweep.source,  sweep.yaml,
                               sweep.spec_json, sweep.max_attempts, now,          content_hash, seed,
                               sweep.draws, sweep.run_cap,      sweep.max_concurrent};
    if (!runs.empty()) result.totals.runs_by_state[RunState::kQueued] = static_cast<int64_t>(runs.size());
    for (const NewRun& run : runs) {
      if (static_cast<int>(result.runs.size()) == kSubmitReplyRuns) break;
      RunRecord record;
      record.index = run.index;
      record.params_json = run.params_json;
      record.params_hash = run.params_hash;
      record.created_ms = now;
      result.runs.push_back(std::move(record));
    }
    return result;
  }

  auto sweep_id = store_.CreateSweep(sweep, runs);
  if (!sweep_id.ok()) return sweep_id.status();
  auto stored = store_.GetSweep(*sweep_id);
  if (!stored.ok()) return stored.status();
  auto stored_runs = store_.ListRunsPage(*sweep_id, RunPageRequest{-1, kSubmitReplyRuns, {}});
  if (!stored_runs.ok()) return stored_runs.status();
  auto totals = store_.TotalSweeps(*sweep_id);
  if (!totals.ok()) return totals.status();
  spdlog::info("sweep {} '{}' ({}) submitted from {}: {} runs{}", *sweep_id, sweep.name, sweep.method, source,
               runs.size(), sweep.method == "bayes" ? absl::StrCat(", up to ", sweep.run_cap, " proposed") : "");
  result.sweep = *std::move(stored);
  result.totals = totals->front();
  result.runs = *std::move(stored_runs);
  return result;
}

absl::Status Scheduler::ProposeRuns() {
  auto sweeps = store_.ListOpenSearchSweeps();
  if (!sweeps.ok()) return sweeps.status();
  for (const SweepRecord& sweep : *sweeps) {
    auto proposed = ProposeRun(sweep);
    if (!proposed.ok()) {
      // One broken sweep must not stop agents from getting other work.
      spdlog::error("sweep {}: cannot propose a run: {}", sweep.id, std::string(proposed.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Scheduler::ProposeRun(const SweepRecord& sweep) {
  auto totals = store_.TotalSweeps(sweep.id);
  if (!totals.ok()) return totals.status();
  const std::map<RunState, int64_t>& counts = totals->front().runs_by_state;
  auto count = [&](RunState state) { auto it = counts.find(state); return it == counts.end() ? 0 : it->second; };
  if (count(RunState::kQueued) > 0) return false;  // one is waiting already
  if (sweep.max_concurrent > 0 && count(RunState::kRunning) >= sweep.max_concurrent) return false;

  auto facts = Facts(sweep.id);
  if (!facts.ok()) return facts.status();
  if ((*facts)->spec == nullptr) return absl::InternalError(absl::StrCat("sweep ", sweep.id, " has no search spec"));
  const SweepSpec& spec = *(*facts)->spec;
  auto runs = store_.ListRuns(sweep.id);
  if (!runs.ok()) return runs.status();
  std::vector<Observation> history;
  for (const RunRecord& run : *runs) {
    // Pruned runs count with the loss they stopped at: worse than where they
    // were heading, which is what pruning concluded anyway. A run that
    // diverged is the worst there is, whatever its last finite losses.
    const bool finished = run.state == RunState::kSucceeded || run.state == RunState::kPruned;
    if (!run.diverged() && (!finished || run.last_step < 0)) continue;
    const nlohmann::json point = nlohmann::json::parse(run.point_json, nullptr, /*allow_exceptions=*/false);
    if (!point.is_array()) continue;
    Observation o;
    for (const auto& x : point) o.point.push_back(x.is_number() ? x.get<double>() : 0.0);
    if (run.diverged()) {
      o.value = std::numeric_limits<double>::infinity();
    } else {
      const std::optional<double> value = spec.Objective(
          {run.total_loss, run.style_loss, run.content_loss, run.tv_loss,
           run.has_eval() ? std::optional<Evaluation>(run.eval) : std::nullopt});
      if (!value) continue;  // not evaluated: nothing to learn from yet
      o.value = *value;
    }
    history.push_back(std::move(o));
  }
  // Draw i has its own random stream, so a restarted coordinator proposes
  // draw `draws` next, from the results then stored.
  SweepRandom random(sweep.search_seed, static_cast<uint64_t>(sweep.draws));
  const std::vector<double> point = SuggestTpe(spec.SearchSpace(), history, random);
  auto params = spec.Resolve(point);
  if (!params.ok()) return params.status();
  auto added = store_.AddRun(sweep.id, sweep.draws, ToNewRun(sweep.draws, *params, nlohmann::json(point).dump()),
                             clock_.NowMillis());
  if (absl::IsAborted(added.status()) || absl::IsFailedPrecondition(added.status())) return false;  // lost a race
  if (!added.ok()) return added.status();
  spdlog::info("sweep {}: proposed run #{} from {} results", sweep.id, sweep.draws, history.size());
  return true;
}

absl::Status Scheduler::RegisterAgent(AgentRecord agent) {
  if (agent.name.empty()) return absl::InvalidArgumentError("an agent needs a name");
  const int64_t now = clock_.NowMillis();
  agent.registered_ms = now;
  agent.last_seen_ms = now;
  spdlog::info("agent '{}' registered from {}: {} {} ({})", agent.name, agent.host, agent.device, agent.device_name,
               agent.description);
  if (absl::Status s = store_.UpsertAgent(agent, now - options_.lease_ms); !s.ok()) return s;
  auto stored = store_.GetAgent(agent.name);
  if (!stored.ok()) return stored.status();
  if (!stored->quarantine_reason.empty()) {
    spdlog::warn("agent '{}' is still quarantined ({}); `stylesweep agents --release {}` lets it take runs again",
                 agent.name, stored->quarantine_reason, agent.name);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<LeaseGrant>> Scheduler::Lease(const std::string& agent, std::string* quarantined) {
  if (absl::Status s = ExpireLeases(); !s.ok()) return s;
  const int64_t now = clock_.NowMillis();
  if (absl::Status s = store_.RecordAgentActivity(agent, now, AgentActivity{}); !s.ok()) return s;
  auto quarantine = QuarantineOf(agent);
  if (!quarantine.ok()) return quarantine.status();
  if (quarantined != nullptr) *quarantined = *quarantine;
  if (!quarantine->empty()) return std::optional<LeaseGrant>();
  if (absl::Status s = ProposeRuns(); !s.ok()) return s;
  auto lease = store_.ClaimNextRun(agent, now, now + options_.lease_ms);
  if (!lease.ok()) return lease.status();
  if (!lease->has_value()) return std::optional<LeaseGrant>();
  const RunRecord& run = (*lease)->run;
  spdlog::info("run {} (sweep {}, #{}) attempt {} leased to '{}'", run.id, run.sweep_id, run.index,
               (*lease)->attempt, agent);
  LeaseGrant grant{run.id, (*lease)->attempt, run.sweep_id, run.params_json, {}};
  auto facts = Facts(run.sweep_id);
  if (!facts.ok()) return facts.status();
  if ((*facts)->stopping) grant.report_steps = Rungs((*facts)->stopping->rule, PlannedSteps(run.params_json));
  return std::optional<LeaseGrant>(std::move(grant));
}

absl::StatusOr<std::string> Scheduler::FetchBlob(const std::string& blob_id) const {
  return artifacts_.ReadBlob(blob_id);
}

absl::StatusOr<RunDirective> Scheduler::Heartbeat(const std::string& agent, const AgentActivity& activity) {
  const int64_t now = clock_.NowMillis();
  const int64_t run_id = activity.run_id;
  const int attempt = activity.attempt;
  if (run_id == 0) {
    if (absl::Status s = store_.RecordAgentActivity(agent, now, activity); !s.ok()) return s;
    return RunDirective::kContinue;
  }
  // Before anything is recorded: someone else's run neither renews its lease
  // nor shows the caller busy.
  if (absl::Status s = store_.CheckAttemptOwner(run_id, attempt, agent); !s.ok()) return s;
  absl::Status renewed = store_.RenewLease(run_id, attempt, now + options_.lease_ms);
  if (!renewed.ok() && !absl::IsFailedPrecondition(renewed)) return renewed;
  AgentActivity shown = activity;
  if (!renewed.ok()) shown = AgentActivity{0, 0, 0, 0, 0, activity.draining};  // it is told to drop the run
  if (absl::Status s = store_.RecordAgentActivity(agent, now, shown); !s.ok()) return s;
  if (!renewed.ok()) {
    spdlog::warn("agent '{}' still runs run {} attempt {}, which is no longer its: telling it to stop", agent,
                 run_id, attempt);
    return RunDirective::kStop;
  }
  auto run = store_.GetRun(run_id);
  if (!run.ok()) return run.status();
  return run->prune_requested ? RunDirective::kPrune : RunDirective::kContinue;
}

namespace {

// "total loss is NaN": the first term of a row that is not finite, or empty.
std::string NonFiniteTerm(const MetricRow& row) {
  const std::pair<const char*, double> terms[] = {
      {"total", row.total}, {"style", row.style}, {"content", row.content}, {"tv", row.tv}};
  for (const auto& [name, value] : terms) {
    if (std::isnan(value)) return absl::StrCat(name, " loss is NaN");
    if (std::isinf(value)) return absl::StrCat(name, " loss is infinite");
  }
  return "";
}

}  // namespace

absl::StatusOr<MetricsVerdict> Scheduler::ReportMetrics(const std::string& agent, int64_t run_id, int attempt,
                                                        const std::vector<MetricRow>& rows) {
  if (absl::Status s = store_.CheckAttemptOwner(run_id, attempt, agent); !s.ok()) return s;
  auto run = store_.GetRun(run_id);
  if (!run.ok()) return run.status();
  const int planned = PlannedSteps(run->params_json);

  // Rows the run cannot have made are refused one by one; the first row
  // that is not finite is where the run diverged.
  MetricsVerdict verdict;
  std::vector<MetricRow> accepted;
  accepted.reserve(rows.size());
  const MetricRow* diverged = nullptr;
  std::string why;
  for (const MetricRow& row : rows) {
    if (row.step < 0 || row.step > planned) {
      verdict.refused_steps.push_back(row.step);
      continue;
    }
    if (std::string term = NonFiniteTerm(row); !term.empty()) {
      if (diverged == nullptr || row.step < diverged->step) {
        diverged = &row;
        why = std::move(term);
      }
      continue;
    }
    MetricRow clean = row;
    if (!std::isfinite(clean.step_seconds) || clean.step_seconds < 0) clean.step_seconds = 0;  // a timing, not a loss
    accepted.push_back(clean);
  }
  if (diverged != nullptr) {
    const int at = diverged->step;
    auto after = std::stable_partition(accepted.begin(), accepted.end(), [at](const MetricRow& r) { return r.step < at; });
    for (auto it = after; it != accepted.end(); ++it) verdict.refused_steps.push_back(it->step);
    accepted.erase(after, accepted.end());
    for (const MetricRow& row : rows) {
      if (row.step >= at && row.step <= planned && !NonFiniteTerm(row).empty()) {
        verdict.refused_steps.push_back(row.step);
      }
    }
  }
  std::sort(verdict.refused_steps.begin(), verdict.refused_steps.end());
  if (!verdict.refused_steps.empty()) {
    spdlog::warn("run {} attempt {}: agent '{}' reported {} rows outside the run's steps 0..{} or after it "
                 "diverged; refused", run_id, attempt, agent, verdict.refused_steps.size(), planned);
  }
  if (absl::Status s = store_.AppendMetrics(run_id, attempt, accepted); !s.ok()) return s;

  if (diverged != nullptr) {
    RunOutcome outcome{RunState::kFailed, absl::StrCat("diverged at step ", diverged->step, ": ", why), "", false,
                       diverged->step};
    if (absl::Status s = Complete(agent, run_id, attempt, outcome); !s.ok()) return s;
    verdict.directive = RunDirective::kStop;
    return verdict;
  }

  if (run->prune_requested) {
    verdict.directive = RunDirective::kPrune;
    return verdict;
  }
  auto facts = Facts(run->sweep_id);
  if (!facts.ok()) return facts.status();
  if (!(*facts)->stopping) return verdict;
  const EarlyTerminate& rule = (*facts)->stopping->rule;
  const SweepSpec& objective = (*facts)->stopping->objective;
  const std::vector<int> rungs = Rungs(rule, planned);

  for (const MetricRow& row : accepted) {
    if (!std::binary_search(rungs.begin(), rungs.end(), row.step)) continue;
    auto at_rung = store_.MetricsAtStep(run->sweep_id, row.step);
    if (!at_rung.ok()) return at_rung.status();
    std::vector<double> others;
    std::optional<double> own = objective.Objective({row.total, row.style, row.content, row.tv, row.eval});
    for (const RunMetricAtStep& m : *at_rung) {
      // A run that diverged before the rung is worse than any that got there.
      const std::optional<double> v =
          m.diverged ? std::numeric_limits<double>::infinity()
                     : objective.Objective({m.row.total, m.row.style, m.row.content, m.row.tv, m.row.eval});
      if (m.run_id == run_id) {
        own = v;  // the stored row wins over a retried duplicate
      } else if (v) {
        others.push_back(*v);
      }
    }
    if (!own) continue;  // not evaluated at this rung: nothing to compare
    if (!ShouldPrune(rule, *own, others)) continue;
    if (absl::Status s = store_.RequestPrune(run_id, attempt); !s.ok()) return s;
    spdlog::info("run {} attempt {} pruned at step {} ({}: {} among {} runs at that rung)", run_id, attempt, row.step,
                 rule.type, *own, others.size() + 1);
    verdict.directive = RunDirective::kPrune;
    return verdict;
  }
  return verdict;
}

namespace {

// A PNG by its header (common/image_header.h), within kMaxImagePixels:
// enough to know the bytes are an image a browser and the report tools will
// open, and can afford to decode, checked without decoding it.
absl::Status CheckSnapshotPng(const std::string& png) {
  auto header = ReadImageHeader(png);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("a snapshot must be a PNG image: ", header.status().message()));
  }
  if (header->format != ImageFormat::kPng) {
    return absl::InvalidArgumentError(absl::StrCat("a snapshot must be a PNG image, not a ",
                                                   std::string(ImageFormatName(header->format))));
  }
  return CheckImagePixels(*header, "the snapshot");
}

}  // namespace

absl::StatusOr<std::string> Scheduler::UploadSnapshot(const std::string& agent, int64_t run_id, int attempt, int step,
                                                      bool final, const std::string& png) {
  absl::ReaderMutexLock files(&files_mu_);
  if (absl::Status s = store_.CheckAttemptOwner(run_id, attempt, agent); !s.ok()) return s;
  auto run = store_.GetRun(run_id);
  if (!run.ok()) return run.status();
  if (run->attempt != attempt || run->state != RunState::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_id, " attempt ", attempt, " is no longer held: now attempt ", run->attempt, ", ",
                     std::string(RunStateName(run->state))));
  }
  const int planned = PlannedSteps(run->params_json);
  if (step < 0 || step > planned) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, ": a snapshot at step ", step,
                                                   " is outside the run's steps 0..", planned));
  }
  if (png.size() > kMaxSnapshotBytes) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, ": a snapshot of ", png.size(),
                                                   " bytes is larger than the limit of ",
                                                   DescribeByteLimit(kMaxSnapshotBytes)));
  }
  if (absl::Status s = CheckSnapshotPng(png); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, " step ", step, ": ", s.message()));
  }
  SnapshotRecord record{run_id, attempt, step, "", final, Sha256Hex(png)};
  auto existing = store_.FindSnapshot(run_id, attempt, step);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {  // a retry, or the same image marked final now: no new file
    record.path = (*existing)->path;
    if (absl::Status s = store_.AddSnapshot(record); !s.ok()) return s;
    return record.path;
  }
  auto facts = Facts(run->sweep_id);
  if (!facts.ok()) return facts.status();
  record.path = ArtifactStore::SnapshotPath((*facts)->dir, run->index, attempt, step, final);
  auto staged = artifacts_.Stage(record.path, png);
  if (!staged.ok()) return staged.status();
  // The file takes its name inside the record's transaction; a refusal
  // leaves neither (the staged file removes itself).
  if (absl::Status s = store_.AddSnapshot(record, [&] { return staged->Commit(); }); !s.ok()) return s;
  auto stored = store_.FindSnapshot(run_id, attempt, step);  // a concurrent twin may have landed first
  if (!stored.ok()) return stored.status();
  return stored->has_value() ? (*stored)->path : record.path;
}

absl::StatusOr<SweepControlResult> Scheduler::Control(const std::string& name, SweepAction action) {
  auto sweep = store_.FindSweep(name);
  if (!sweep.ok()) return sweep.status();
  SweepControlResult result;
  switch (action) {
    case SweepAction::kCancel: {
      auto cancelled = store_.CancelSweep(sweep->id, "sweep cancelled", clock_.NowMillis());
      if (!cancelled.ok()) return cancelled.status();
      result.runs = *cancelled;
      break;
    }
    case SweepAction::kPause:
    case SweepAction::kResume:
      if (absl::Status s = store_.SetSweepPaused(sweep->id, action == SweepAction::kPause); !s.ok()) return s;
      break;
    case SweepAction::kRetryFailed: {
      auto requeued = store_.RequeueRuns(sweep->id, {RunState::kFailed, RunState::kLost});
      if (!requeued.ok()) return requeued.status();
      result.runs = *requeued;
      break;
    }
  }
  auto after = store_.GetSweep(sweep->id);
  if (!after.ok()) return after.status();
  result.sweep = *std::move(after);
  static constexpr const char* kVerbs[] = {"cancelled", "paused", "resumed", "retried"};
  spdlog::info("sweep {} '{}' {} ({} runs)", result.sweep.id, result.sweep.name, kVerbs[static_cast<int>(action)],
               result.runs);
  return result;
}

absl::Status Scheduler::Release(const std::string& agent, int64_t run_id, int attempt, const std::string& reason) {
  if (absl::Status s = store_.CheckAttemptOwner(run_id, attempt, agent); !s.ok()) return s;
  const std::string why = absl::StrCat("handed back by agent '", agent, "'", reason.empty() ? "" : ": ", reason);
  absl::Status s = store_.ReleaseRun(run_id, attempt, why, clock_.NowMillis());
  if (s.ok()) spdlog::info("run {} attempt {} {}; queued again", run_id, attempt, why);
  return s;
}

namespace {

// Agents read input images from their cache, named by content
// (".../blobs/<sha256 hex>"), so their errors name those files. Users know
// the images by the names in their sweep: put those back.
std::string NameImagesInError(std::string error, const nlohmann::json& images) {
  if (error.find("/blobs/") == std::string::npos || !images.is_object()) return error;
  for (const auto& [id, name] : images.items()) {
    if (!name.is_string() || id.rfind("sha256:", 0) != 0) continue;
    const std::string needle = "/blobs/" + id.substr(7);
    for (size_t at = error.find(needle); at != std::string::npos; at = error.find(needle)) {
      // The path starts after the quote or space before it.
      size_t start = at;
      while (start > 0 && error[start - 1] != '\'' && error[start - 1] != '"' && error[start - 1] != ' ') --start;
      error.replace(start, at + needle.size() - start, name.get<std::string>());
    }
  }
  return error;
}

}  // namespace

absl::Status Scheduler::Complete(const std::string& agent, int64_t run_id, int attempt, const RunOutcome& outcome) {
  const RunState state = outcome.state;
  if (state != RunState::kSucceeded && state != RunState::kFailed && state != RunState::kCancelled &&
      state != RunState::kPruned) {
    return absl::InvalidArgumentError(absl::StrCat("an agent may end a run as SUCCEEDED, FAILED, CANCELLED or PRUNED, not ",
                                                   std::string(RunStateName(state))));
  }
  const bool diverged = outcome.diverged_step >= 0;
  if (diverged && state != RunState::kFailed) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, ": a diverged run ends FAILED, not ",
                                                   std::string(RunStateName(state))));
  }
  if (absl::Status s = store_.CheckAttemptOwner(run_id, attempt, agent); !s.ok()) return s;
  auto run = store_.GetRun(run_id);
  if (!run.ok()) return run.status();
  const int planned = PlannedSteps(run->params_json);
  if (diverged && outcome.diverged_step > planned) {
    return absl::InvalidArgumentError(absl::StrCat("run ", run_id, " cannot diverge at step ", outcome.diverged_step,
                                                   ": it plans ", planned, " steps"));
  }
  // False for a retried report of an attempt already over.
  const bool current = run->attempt == attempt && run->state == RunState::kRunning;

  std::string error = outcome.error;
  if (diverged && error.empty()) error = absl::StrCat("diverged at step ", outcome.diverged_step);
  if (!error.empty()) {
    auto facts = Facts(run->sweep_id);
    if (!facts.ok()) return facts.status();
    error = NameImagesInError(std::move(error), (*facts)->images);
  }
  const bool out_of_memory = state == RunState::kFailed && outcome.out_of_memory && !diverged;
  if (out_of_memory) {
    if (!current) {
      // A retried report of a run already given to another agent.
      return store_.RetryElsewhere(run_id, attempt, error, outcome.log_tail, clock_.NowMillis());
    }
    auto avoided = store_.AgentsAvoidedBy(run_id);
    if (!avoided.ok()) return avoided.status();
    std::vector<std::string> tried = *avoided;
    tried.push_back(agent);
    auto agents = ListAgents();
    if (!agents.ok()) return agents.status();
    std::vector<std::string> untried;
    for (const AgentView& view : *agents) {
      if (view.state == AgentState::kLost || view.state == AgentState::kQuarantined) continue;
      if (std::find(tried.begin(), tried.end(), view.agent.name) == tried.end()) untried.push_back(view.agent.name);
    }
    if (!untried.empty()) {
      const std::string why = absl::StrCat("out of device memory on agent '", agent, "': ", error);
      absl::Status s = store_.RetryElsewhere(run_id, attempt, why, outcome.log_tail, clock_.NowMillis());
      if (s.ok()) {
        spdlog::warn("run {} attempt {} {}; queued again for another agent ({} not tried yet)", run_id, attempt, why,
                     absl::StrJoin(untried, ", "));
      }
      return s;
    }
    error = absl::StrCat("out of device memory on every agent that could take it (", absl::StrJoin(tried, ", "),
                         "): ", error);
  }

  AttemptOutcome attempt_outcome;
  attempt_outcome.agent = agent;
  attempt_outcome.state = state;
  attempt_outcome.error = error;
  attempt_outcome.log_tail = outcome.log_tail;
  attempt_outcome.diverged_step = outcome.diverged_step;
  attempt_outcome.last_step = planned;
  // Cancellations say nothing about the agent's health; running out of
  // device memory says the run is too big for it, and diverging that the
  // run's settings are wrong, not that the agent is broken.
  attempt_outcome.counts_for_agent = state != RunState::kCancelled && !outcome.out_of_memory && !diverged;
  attempt_outcome.quarantine_after = options_.quarantine_after;
  auto completed = store_.CompleteAttempt(run_id, attempt, attempt_outcome, clock_.NowMillis());
  if (!completed.ok()) return completed.status();
  if (!completed->applied) return absl::OkStatus();  // a retry: logged and counted the first time
  if (state == RunState::kFailed) {
    spdlog::warn("run {} attempt {} FAILED: {}", run_id, attempt, error);
  } else {
    spdlog::info("run {} attempt {} {}", run_id, attempt, std::string(RunStateName(state)));
  }
  const AgentRecord& holder = completed->agent;
  if (attempt_outcome.counts_for_agent && state == RunState::kFailed && !holder.quarantine_reason.empty() &&
      holder.consecutive_failures == options_.quarantine_after) {
    spdlog::error("agent '{}' quarantined: {}. It takes no runs until `stylesweep agents --release {}`", agent,
                  holder.quarantine_reason, agent);
  }
  return absl::OkStatus();
}

absl::StatusOr<DeleteResult> Scheduler::Delete(const std::string& name, bool cancel_first) {
  absl::MutexLock files(&files_mu_);
  auto sweep = store_.FindSweep(name);
  if (!sweep.ok()) return sweep.status();
  if (cancel_first) {
    auto cancelled = store_.CancelSweep(sweep->id, "sweep cancelled to be deleted", clock_.NowMillis());
    if (!cancelled.ok()) return cancelled.status();
  }
  auto deleted = store_.DeleteSweep(sweep->id);
  if (!deleted.ok()) return deleted.status();
  ForgetFacts(sweep->id);
  DeleteResult result{deleted->sweep, deleted->runs, deleted->metric_rows, 0, 0};
  // The rows are gone: from here on a failure leaves files no record names,
  // which the log says, and never the reverse.
  auto freed = artifacts_.RemoveSweepDir(ArtifactStore::SweepDir(sweep->id, sweep->name));
  if (freed.ok()) {
    result.bytes_freed += *freed;
  } else {
    spdlog::error("sweep {} deleted, but its artifacts were not all removed: {}", sweep->id,
                  std::string(freed.status().message()));
  }
  for (const std::string& blob : deleted->unshared_blobs) {
    auto blob_freed = artifacts_.RemoveBlob(blob);
    if (!blob_freed.ok()) {
      spdlog::error("sweep {} deleted, but its image {} was not removed: {}", sweep->id, blob,
                    std::string(blob_freed.status().message()));
      continue;
    }
    result.bytes_freed += *blob_freed;
    result.blobs_removed += *blob_freed > 0 ? 1 : 0;
  }
  spdlog::info("sweep {} '{}' deleted: {} runs, {} loss rows, {} images, {} bytes", sweep->id, sweep->name,
               result.runs, result.metric_rows, result.blobs_removed, result.bytes_freed);
  return result;
}

absl::StatusOr<std::shared_ptr<const Scheduler::SweepFacts>> Scheduler::Facts(int64_t sweep_id) {
  {
    absl::MutexLock lock(&facts_mu_);
    if (auto it = facts_.find(sweep_id); it != facts_.end()) return it->second;
  }
  auto sweep = store_.GetSweep(sweep_id);
  if (!sweep.ok()) return sweep.status();
  auto facts = std::make_shared<SweepFacts>();
  facts->dir = ArtifactStore::SweepDir(sweep->id, sweep->name);
  facts->stopping = StoppingRuleOf(*sweep);
  const nlohmann::json spec = nlohmann::json::parse(sweep->spec_json, nullptr, /*allow_exceptions=*/false);
  if (spec.is_object() && spec.contains("images") && spec["images"].is_object()) facts->images = spec["images"];
  if (sweep->method == "bayes") {
    auto parsed = StoredSpec(*sweep);
    if (!parsed.ok()) return parsed.status();
    facts->spec = std::make_shared<const SweepSpec>(*std::move(parsed));
  }
  absl::MutexLock lock(&facts_mu_);
  // Bounded: far more sweeps than are ever active at once.
  if (facts_.size() >= 4096) facts_.clear();
  facts_[sweep_id] = facts;
  return std::shared_ptr<const SweepFacts>(facts);
}

void Scheduler::ForgetFacts(int64_t sweep_id) {
  absl::MutexLock lock(&facts_mu_);
  facts_.erase(sweep_id);
}

absl::StatusOr<std::vector<AgentView>> Scheduler::ListAgents() {
  auto agents = store_.ListAgents();
  if (!agents.ok()) return agents.status();
  const int64_t now = clock_.NowMillis();
  std::vector<AgentView> views;
  views.reserve(agents->size());
  for (AgentRecord& agent : *agents) {
    const AgentState state = StateOf(agent, now, options_.lease_ms);
    views.push_back(AgentView{std::move(agent), state});
  }
  return views;
}

absl::StatusOr<std::string> Scheduler::QuarantineOf(const std::string& agent) {
  auto record = store_.GetAgent(agent);
  if (!record.ok()) return record.status();
  return record->quarantine_reason;
}

absl::StatusOr<bool> Scheduler::ReleaseAgent(const std::string& agent) {
  auto released = store_.ReleaseAgent(agent);
  if (released.ok() && *released) spdlog::info("agent '{}' released from quarantine", agent);
  return released;
}

absl::Status Scheduler::ExpireLeases() {
  auto expired = store_.ExpireLeases(clock_.NowMillis());
  if (!expired.ok()) return expired.status();
  for (const RunRecord& run : *expired) {
    spdlog::warn("run {} lost its agent's lease; now {}", run.id, std::string(RunStateName(run.state)));
  }
  return absl::OkStatus();
}

}  // namespace stylesweep
