#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/client/coordinator_client.h"
#include "agent/device_info.h"
#include "agent/engine/engine.h"
#include "agent/runner.h"
#include "common/signals.h"
#include "coordinator/server.h"
#include "tools/commands.h"
#include "tools/report.h"
#include "tools/status.h"
#include "tools/submission.h"

namespace stylesweep {
namespace {

bool Finished(const RunRecord& run) { return IsTerminal(run.state) || run.state == RunState::kLost; }

// Prints one line per run as it finishes; true once every run has.
bool ReportProgress(Store& store, int64_t sweep_id, std::set<int64_t>& reported) {
  auto runs = store.ListRuns(sweep_id);
  if (!runs.ok()) return false;
  for (const RunRecord& run : *runs) {
    if (!Finished(run) || !reported.insert(run.id).second) continue;
    const double seconds = run.finished_ms > run.started_ms ? (run.finished_ms - run.started_ms) / 1000.0 : 0;
    // eval/score ranks runs across the sweep; the loss only within one setting of the weights.
    const std::string detail =
        run.state != RunState::kSucceeded ? absl::StrCat(": ", run.error)
        : run.has_eval() ? absl::StrCat(", eval/score ", FormatNumber(run.eval.score()), ", loss/total ",
                                        FormatNumber(run.total_loss))
                         : absl::StrCat(", loss/total ", FormatNumber(run.total_loss));
    std::printf("[%zu/%zu] run #%d %s in %.1f s%s\n", reported.size(), runs->size(), run.index,
                std::string(RunStateName(run.state)).c_str(), seconds, detail.c_str());
    std::fflush(stdout);
  }
  return std::all_of(runs->begin(), runs->end(), Finished);
}

}  // namespace

int RunLocal(const LocalOptions& options) {
  auto submission = PrepareSubmission(options.sweep_file, SubmissionOptions{CheckWeightsFile, options.allowed_dirs});
  if (!submission.ok()) {
    spdlog::error("{}", std::string(submission.status().message()));
    return 2;
  }
  for (const std::string& warning : submission->warnings) spdlog::warn("{}: {}", options.sweep_file, warning);

  std::atomic<bool> interrupted{false};
  HandleTerminationSignals([&interrupted](int) {
    spdlog::warn("interrupted: stopping agents; finished results stay in the database, queued runs stay queued");
    interrupted = true;
  });

  CoordinatorConfig config;
  config.listen = "127.0.0.1:0";
  config.db = options.db;
  config.artifacts = options.artifacts;
  auto server = CoordinatorServer::Start(config);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  SubmitOptions submit;
  submit.allow_duplicate = options.allow_duplicate;
  submit.weights_paths = submission->weights;
  auto submitted = (*server)->scheduler().Submit(submission->yaml, submission->source, submission->files, submit);
  if (!submitted.ok()) {
    spdlog::error("{}", std::string(submitted.status().message()));
    return 2;
  }
  const int64_t sweep_id = submitted->sweep.id;
  // The per-run lines below say what matters; the servers' own logs would
  // repeat it. Warnings (random weights, failures) still show.
  spdlog::set_level(spdlog::level::warn);
  std::printf("sweep %lld '%s': %zu runs, %d agent%s\n", static_cast<long long>(sweep_id),
              submitted->sweep.name.c_str(), submitted->runs.size(), options.agents, options.agents == 1 ? "" : "s");
  std::fflush(stdout);

  const int agents = std::max(1, options.agents);
  const int cores = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  const int threads_each = std::max(1, cores / agents);
  std::vector<std::unique_ptr<Engine>> engines;
  std::vector<std::unique_ptr<CoordinatorClient>> clients;
  std::vector<std::unique_ptr<Runner>> runners;
  for (int i = 0; i < agents; ++i) {
    EngineOptions engine_options;
    engine_options.device = options.device;
    engine_options.threads = threads_each;
    engine_options.weights_path = options.weights;
    auto engine = CreateTorchEngine(engine_options);
    if (!engine.ok()) {
      spdlog::error("{}", std::string(engine.status().message()));
      return 2;
    }
    auto client = CreateGrpcCoordinatorClient((*server)->address(), GrpcClientOptions{});
    if (!client.ok()) {
      spdlog::error("{}", std::string(client.status().message()));
      return 1;
    }
    RunnerOptions runner_options;
    const DeviceInfo device = DescribeDevice(options.device);
    runner_options.identity = {absl::StrCat("local-", i), "localhost", options.device, (*engine)->Describe(),
                               device.name, device.memory_bytes, 1};
    runner_options.cache_dir = absl::StrCat(options.artifacts, "/.agent-cache");
    runner_options.idle_poll_ms = 200;
    runners.push_back(std::make_unique<Runner>(**client, **engine, runner_options));
    engines.push_back(std::move(*engine));
    clients.push_back(std::move(*client));
  }
  std::vector<std::thread> threads;
  for (auto& runner : runners) {
    threads.emplace_back([r = runner.get()] {
      if (absl::Status s = r->Serve(); !s.ok()) spdlog::error("agent stopped: {}", std::string(s.message()));
    });
  }

  std::set<int64_t> reported;
  while (!interrupted && !ReportProgress((*server)->store(), sweep_id, reported)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  for (auto& runner : runners) runner->Stop();
  for (auto& t : threads) t.join();

  auto view_runs = (*server)->store().ListRuns(sweep_id);
  auto view_sweep = (*server)->store().GetSweep(sweep_id);
  (*server)->Shutdown();
  if (!view_runs.ok() || !view_sweep.ok()) {
    spdlog::error("cannot read the results back from {}", options.db);
    return 1;
  }
  SweepView view{std::move(*view_sweep), std::move(*view_runs), {}};
  view.counts = CountByState(view.runs);
  std::printf("\n%s\n", RenderRunTable(view).c_str());
  // The best run by eval/score (comparable across the sweep's runs) and the
  // Pareto front of style against content, as `stylesweep status` says them.
  const std::string status = RenderSweepStatus(view, 0);
  for (absl::string_view line : absl::StrSplit(status, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "best:") || absl::StartsWith(line, "pareto front:")) {
      std::printf("%s\n", std::string(line).c_str());
    }
  }
  std::printf("database: %s   (stylesweep report %lld --db %s)\n", options.db.c_str(),
              static_cast<long long>(sweep_id), options.db.c_str());
  if (interrupted) return 130;
  const bool all_ok = view.counts.size() == 1 && view.counts.count("SUCCEEDED") == 1;
  return all_ok ? 0 : 1;
}

}  // namespace stylesweep
