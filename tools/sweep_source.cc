#include "tools/sweep_source.h"

#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/rpc/convert.h"
#include "coordinator/store/store.h"
#include "nlohmann/json.hpp"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {
namespace {

class DatabaseSource final : public SweepSource {
 public:
  explicit DatabaseSource(std::unique_ptr<Store> store) : store_(std::move(store)) {}

  // Two queries however many sweeps and runs there are: the records
  // without their text, and every sweep's counts from one aggregate.
  absl::StatusOr<std::vector<SweepView>> ListSweeps() override {
    auto sweeps = store_->ListSweeps(/*with_text=*/false);
    if (!sweeps.ok()) return sweeps.status();
    auto totals = store_->TotalSweeps(0);
    if (!totals.ok()) return totals.status();
    std::map<int64_t, const SweepTotals*> by_id;
    for (const SweepTotals& t : *totals) by_id[t.sweep_id] = &t;
    std::vector<SweepView> views;
    views.reserve(sweeps->size());
    for (SweepRecord& sweep : *sweeps) {
      SweepView view{std::move(sweep), {}, {}};
      if (auto it = by_id.find(view.sweep.id); it != by_id.end()) {
        for (const auto& [state, n] : it->second->runs_by_state) {
          if (n > 0) view.counts[std::string(RunStateName(state))] = static_cast<int>(n);
        }
      }
      views.push_back(std::move(view));
    }
    return views;
  }

  absl::StatusOr<SweepView> GetSweep(const std::string& id_or_name) override {
    auto record = store_->FindSweep(id_or_name);
    if (!record.ok()) return record.status();
    auto runs = store_->ListRuns(record->id);
    if (!runs.ok()) return runs.status();
    SweepView view{std::move(*record), std::move(*runs), {}};
    view.counts = CountByState(view.runs);
    view.diverged = CountDiverged(view.runs);
    return view;
  }

  absl::StatusOr<RunDetails> GetRun(int64_t run_id, bool with_metrics, bool with_snapshots) override {
    RunDetails details;
    auto run = store_->GetRun(run_id);
    if (!run.ok()) return run.status();
    details.run = *std::move(run);
    auto sweep = store_->GetSweep(details.run.sweep_id);
    if (!sweep.ok()) return sweep.status();
    details.sweep = *std::move(sweep);
    if (with_metrics && details.run.attempt > 0) {  // a run never leased has no losses
      auto metrics = store_->GetMetrics(run_id, 0);
      if (!metrics.ok()) return metrics.status();
      details.metrics = *std::move(metrics);
    }
    if (with_snapshots) {
      auto snapshots = store_->ListSnapshots(run_id);
      if (!snapshots.ok()) return snapshots.status();
      details.snapshots = *std::move(snapshots);
    }
    return details;
  }

  ArtifactReader Artifacts(const SweepRecord& sweep) override {
    const std::string root = SweepArtifactsDir(sweep);
    return [root](const std::string& ref) -> absl::StatusOr<std::string> {
      if (root.empty()) return absl::NotFoundError("the sweep does not say where its artifacts are");
      const ArtifactStore artifacts(root);
      return ref.rfind("sha256:", 0) == 0 ? artifacts.ReadBlob(ref) : artifacts.ReadArtifact(ref);
    };
  }

 private:
  std::unique_ptr<Store> store_;
};

class CoordinatorSource final : public SweepSource {
 public:
  // The most runs GetSweep returns in one reply.
  static constexpr int kRunsPerPage = 5000;

  CoordinatorSource(SourceOptions options, std::shared_ptr<v1::Coordinator::Stub> stub)
      : options_(std::move(options)), stub_(std::move(stub)) {}

  // Every page of the list of sweeps.
  absl::StatusOr<std::vector<SweepView>> ListSweeps() override {
    std::vector<SweepView> views;
    std::string page_token;
    do {
      auto response = GetSweepResponse("", page_token);
      if (!response.ok()) return response.status();
      for (const v1::SweepSummary& sweep : response->sweeps()) {
        SweepView view{FromProto(sweep), {}, {}};
        for (const auto& [state, n] : sweep.runs_by_state()) view.counts[state] = n;
        views.push_back(std::move(view));
      }
      page_token = response->next_page_token();
    } while (!page_token.empty());
    return views;
  }

  // Every page of the sweep's runs, the largest the coordinator gives.
  absl::StatusOr<SweepView> GetSweep(const std::string& id_or_name) override {
    SweepView view;
    std::string page_token;
    do {
      auto response = GetSweepResponse(id_or_name, page_token);
      if (!response.ok()) return response.status();
      if (response->sweeps_size() != 1) return absl::NotFoundError(absl::StrCat("no sweep '", id_or_name, "'"));
      if (page_token.empty()) {
        view.sweep = FromProto(response->sweeps(0));
      } else if (response->sweeps(0).id() != view.sweep.id) {
        // The name now means another sweep (deleted, and submitted again).
        return absl::AbortedError(absl::StrCat("sweep '", id_or_name, "' changed while it was read; try again"));
      }
      for (const v1::RunSummary& run : response->runs()) view.runs.push_back(FromProto(run, view.sweep.id));
      if (!response->next_page_token().empty() && response->next_page_token() == page_token) {
        return absl::InternalError("the coordinator returned the same page twice");
      }
      page_token = response->next_page_token();
    } while (!page_token.empty());
    view.counts = CountByState(view.runs);
    view.diverged = CountDiverged(view.runs);
    return view;
  }

  absl::StatusOr<RunDetails> GetRun(int64_t run_id, bool with_metrics, bool with_snapshots) override {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    request.set_losses(with_metrics);
    request.set_snapshots(with_snapshots);
    v1::GetRunResponse response;
    grpc::ClientContext context;
    PrepareContext(context, options_.security, options_.timeout_ms);
    if (absl::Status s = Check(stub_->GetRun(&context, request, &response)); !s.ok()) return s;
    RunDetails details;
    details.sweep = FromProto(response.sweep());
    details.run = FromProto(response.run(), details.sweep.id);
    details.metrics = FromProto(response.losses());
    for (const v1::SnapshotSummary& s : response.snapshots()) details.snapshots.push_back(FromProto(s, run_id));
    // A long run's losses come a page at a time.
    while (response.more_losses()) {
      v1::GetRunRequest next;
      next.set_run_id(run_id);
      next.set_losses(true);
      next.set_losses_from_step(response.next_losses_step());
      response.Clear();
      grpc::ClientContext page_context;
      PrepareContext(page_context, options_.security, options_.timeout_ms);
      if (absl::Status s = Check(stub_->GetRun(&page_context, next, &response)); !s.ok()) return s;
      for (MetricRow& row : FromProto(response.losses())) details.metrics.push_back(row);
    }
    return details;
  }

  ArtifactReader Artifacts(const SweepRecord&) override {
    // The coordinator has one artifacts directory for every sweep.
    return [options = options_, stub = stub_](const std::string& ref) -> absl::StatusOr<std::string> {
      grpc::ClientContext context;
      PrepareContext(context, options.security, options.timeout_ms);
      if (ref.rfind("sha256:", 0) == 0) {
        v1::FetchBlobRequest request;
        request.set_blob_id(ref);
        v1::FetchBlobResponse response;
        if (absl::Status s = Check(options, stub->FetchBlob(&context, request, &response)); !s.ok()) return s;
        return std::move(*response.mutable_data());
      }
      v1::FetchArtifactRequest request;
      request.set_path(ref);
      v1::FetchArtifactResponse response;
      if (absl::Status s = Check(options, stub->FetchArtifact(&context, request, &response)); !s.ok()) return s;
      return std::move(*response.mutable_data());
    };
  }

 private:
  static absl::Status Check(const SourceOptions& options, const grpc::Status& status) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      const absl::Status unreachable = UnreachableError(status, options.coordinator, options.security);
      return absl::UnavailableError(absl::StrCat(unreachable.message(),
                                                 absl::EndsWith(unreachable.message(), "?") ? " " : ". ",
                                                 "To read a database file directly, pass --db"));
    }
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return absl::UnimplementedError(absl::StrCat("the coordinator at ", options.coordinator,
                                                   " is older than this stylesweep and cannot answer this (",
                                                   status.error_message(), "); pass --db with its database file"));
    }
    return FromGrpcStatus(status);
  }
  absl::Status Check(const grpc::Status& status) const { return Check(options_, status); }

  // Every sweep (`sweep` empty, summaries only), or one page of one sweep.
  absl::StatusOr<v1::GetSweepResponse> GetSweepResponse(const std::string& sweep, const std::string& page_token = "") {
    grpc::ClientContext context;
    PrepareContext(context, options_.security, options_.timeout_ms);
    v1::GetSweepRequest request;
    request.set_sweep(sweep);
    request.set_page_token(page_token);
    if (!sweep.empty()) request.set_page_size(kRunsPerPage);
    v1::GetSweepResponse response;
    if (absl::Status s = Check(stub_->GetSweep(&context, request, &response)); !s.ok()) return s;
    return response;
  }

  SourceOptions options_;
  std::shared_ptr<v1::Coordinator::Stub> stub_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SweepSource>> OpenSweepSource(const SourceOptions& options) {
  if (!options.db.empty()) {
    SqliteStoreOptions store_options;
    store_options.read_only = true;
    auto store = OpenSqliteStore(options.db, store_options);
    if (!store.ok()) return store.status();
    return std::make_unique<DatabaseSource>(*std::move(store));
  }
  auto channel = MakeChannel(options.coordinator, options.security);
  if (!channel.ok()) return channel.status();
  return std::make_unique<CoordinatorSource>(options, std::shared_ptr<v1::Coordinator::Stub>(
                                                          v1::Coordinator::NewStub(*channel)));
}

absl::StatusOr<int64_t> ResolveRunId(SweepSource& source, const std::string& text) {
  const size_t hash = text.rfind('#');
  if (hash == std::string::npos) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(text, &id) || id <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "run '", text, "': expected a run id (a number, as in report --format json) or SWEEP#INDEX (my-sweep#3)"));
    }
    return id;
  }
  const std::string sweep = text.substr(0, hash);
  int index = 0;
  if (sweep.empty() || !absl::SimpleAtoi(text.substr(hash + 1), &index) || index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("run '", text, "': expected SWEEP#INDEX, a sweep's id or name and a run's index (my-sweep#3)"));
  }
  auto view = source.GetSweep(sweep);
  if (!view.ok()) return view.status();
  for (const RunRecord& run : view->runs) {
    if (run.index == index) return run.id;
  }
  return absl::NotFoundError(absl::StrCat("sweep ", view->sweep.id, " '", view->sweep.name, "' has no run #", index,
                                          " (its runs are #0 to #", view->runs.size() - 1, ")"));
}

absl::StatusOr<HtmlReportData> LoadHtmlReportData(SweepSource& source, const std::string& sweep,
                                                  const ReportOptions& options) {
  auto view = source.GetSweep(sweep);
  if (!view.ok()) return view.status();
  auto selected = SelectRuns(*view, options);
  if (!selected.ok()) return selected.status();
  HtmlReportData data;
  data.view = *std::move(view);
  data.view.runs = *std::move(selected);
  // Only the runs shown: a report of the best 20 of 10,000 runs reads 20
  // runs' losses.
  for (const RunRecord& run : data.view.runs) {
    if (run.attempt == 0) continue;
    auto details = source.GetRun(run.id, /*with_metrics=*/true, /*with_snapshots=*/true);
    if (!details.ok()) return details.status();
    data.metrics[run.id] = std::move(details->metrics);
    data.snapshots[run.id] = std::move(details->snapshots);
  }
  data.read_artifact = source.Artifacts(data.view.sweep);
  return data;
}

absl::StatusOr<Comparison> LoadComparison(SweepSource& source, const std::string& first, const std::string& second) {
  Comparison comparison;
  for (auto [text, side] : {std::pair{&first, &comparison.a}, std::pair{&second, &comparison.b}}) {
    auto id = ResolveRunId(source, *text);
    if (!id.ok()) return id.status();
    auto details = source.GetRun(*id, /*with_metrics=*/true, /*with_snapshots=*/false);
    if (!details.ok()) return details.status();
    side->sweep = std::move(details->sweep);
    side->run = std::move(details->run);
    side->metrics = std::move(details->metrics);
    side->read_artifact = source.Artifacts(side->sweep);
  }
  return comparison;
}

}  // namespace stylesweep
