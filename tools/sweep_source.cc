#include "tools/sweep_source.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "nlohmann/json.hpp"
#include "coordinator/rpc/convert.h"
#include "coordinator/store/store.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {
namespace {

absl::StatusOr<std::unique_ptr<Store>> OpenReadOnly(const std::string& db) {
  SqliteStoreOptions options;
  options.read_only = true;
  return OpenSqliteStore(db, options);
}

absl::StatusOr<v1::GetSweepResponse> AskCoordinator(const SourceOptions& source, const std::string& sweep) {
  auto channel = MakeChannel(source.coordinator, source.security);
  if (!channel.ok()) return channel.status();
  auto stub = v1::Coordinator::NewStub(*channel);
  grpc::ClientContext context;
  PrepareContext(context, source.security, source.timeout_ms);
  v1::GetSweepRequest request;
  request.set_sweep(sweep);
  v1::GetSweepResponse response;
  grpc::Status status = stub->GetSweep(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("cannot reach the coordinator at ", source.coordinator, " (",
                                               status.error_message(),
                                               "); is it running? To read a database file directly, pass --db"));
  }
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace

namespace {

// A sweep (by id or name) and its runs, read from a database.
absl::StatusOr<SweepView> ViewFromStore(Store& store, const std::string& sweep) {
  auto record = store.FindSweep(sweep);
  if (!record.ok()) return record.status();
  auto runs = store.ListRuns(record->id);
  if (!runs.ok()) return runs.status();
  SweepView view{std::move(*record), std::move(*runs), {}};
  view.counts = CountByState(view.runs);
  return view;
}

}  // namespace

absl::StatusOr<SweepView> LoadSweepView(const SourceOptions& source, const std::string& sweep) {
  if (!source.db.empty()) {
    auto store = OpenReadOnly(source.db);
    if (!store.ok()) return store.status();
    return ViewFromStore(**store, sweep);
  }
  auto response = AskCoordinator(source, sweep);
  if (!response.ok()) return response.status();
  if (response->sweeps_size() != 1) return absl::NotFoundError(absl::StrCat("no sweep '", sweep, "'"));
  SweepView view;
  view.sweep = FromProto(response->sweeps(0));
  for (const v1::RunSummary& run : response->runs()) view.runs.push_back(FromProto(run, view.sweep.id));
  view.counts = CountByState(view.runs);
  return view;
}

absl::StatusOr<HtmlReportData> LoadHtmlReportData(const SourceOptions& source, const std::string& sweep) {
  if (source.db.empty()) {
    return absl::UnimplementedError(
        "HTML reports read the database and the artifacts directly: pass --db with the coordinator's database file "
        "(safe while it runs)");
  }
  auto store = OpenReadOnly(source.db);
  if (!store.ok()) return store.status();
  auto view = ViewFromStore(**store, sweep);
  if (!view.ok()) return view.status();
  HtmlReportData data;
  data.view = *std::move(view);
  for (const RunRecord& run : data.view.runs) {
    if (run.attempt == 0) continue;
    auto metrics = (*store)->GetMetrics(run.id, 0);
    if (!metrics.ok()) return metrics.status();
    data.metrics[run.id] = std::move(*metrics);
    auto snapshots = (*store)->ListSnapshots(run.id);
    if (!snapshots.ok()) return snapshots.status();
    data.snapshots[run.id] = std::move(*snapshots);
  }
  const nlohmann::json spec = nlohmann::json::parse(data.view.sweep.spec_json, nullptr, false);
  const std::string root =
      spec.is_object() && spec.contains("artifacts_dir") ? spec["artifacts_dir"].get<std::string>() : "";
  data.read_artifact = [root](const std::string& ref) -> absl::StatusOr<std::string> {
    if (root.empty()) return absl::NotFoundError("the sweep does not say where its artifacts are");
    if (ref.rfind("sha256:", 0) == 0) {
      const std::string hex = ref.substr(7);
      if (hex.size() < 2) return absl::InvalidArgumentError(absl::StrCat("malformed blob id '", ref, "'"));
      return ReadFileToString((std::filesystem::path(root) / "blobs" / hex.substr(0, 2) / hex).string());
    }
    return ReadFileToString((std::filesystem::path(root) / ref).string());
  };
  return data;
}

absl::StatusOr<std::vector<SweepView>> LoadSweepList(const SourceOptions& source) {
  std::vector<SweepView> views;
  if (!source.db.empty()) {
    auto store = OpenReadOnly(source.db);
    if (!store.ok()) return store.status();
    auto sweeps = (*store)->ListSweeps();
    if (!sweeps.ok()) return sweeps.status();
    for (SweepRecord& sweep : *sweeps) {
      auto runs = (*store)->ListRuns(sweep.id);
      if (!runs.ok()) return runs.status();
      views.push_back(SweepView{std::move(sweep), {}, CountByState(*runs)});
    }
    return views;
  }
  auto response = AskCoordinator(source, "");
  if (!response.ok()) return response.status();
  for (const v1::SweepSummary& sweep : response->sweeps()) {
    SweepView view{FromProto(sweep), {}, {}};
    for (const auto& [state, n] : sweep.runs_by_state()) view.counts[state] = n;
    views.push_back(std::move(view));
  }
  return views;
}

}  // namespace stylesweep
