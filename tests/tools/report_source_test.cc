// Reports from a coordinator read the same as reports from its database file:
// the runs, the losses and snapshots (GetRun) and the images (FetchBlob,
// FetchArtifact) come over gRPC.

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "coordinator/store/store.h"
#include "coordinator/server.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"
#include "tests/tools/report_fixture.h"
#include "tools/compare.h"
#include "tools/html_report.h"
#include "tools/sweep_source.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ReportSourceTest : public testing::FixtureServerTest {
 protected:
  std::unique_ptr<SweepSource> Open(bool from_coordinator) {
    SourceOptions options;
    if (from_coordinator) {
      options.coordinator = server_->address();
    } else {
      options.db = (dir_ / "f.db").string();
    }
    auto source = OpenSweepSource(options);
    EXPECT_TRUE(source.ok()) << source.status();
    return *std::move(source);
  }
};

TEST_F(ReportSourceTest, HtmlReportFromTheCoordinatorIsTheSameAsFromTheDatabase) {
  auto from_db = Open(false);
  auto from_coordinator = Open(true);
  auto local = LoadHtmlReportData(*from_db, "fixture", {});
  auto remote = LoadHtmlReportData(*from_coordinator, "fixture", {});
  ASSERT_TRUE(local.ok()) << local.status();
  ASSERT_TRUE(remote.ok()) << remote.status();
  const std::string html = RenderHtmlReport(*remote);
  EXPECT_EQ(html, RenderHtmlReport(*local));
  // Inputs (2), finals of the runs that have one (5, the diverged run's its
  // last finite one), the best three runs' snapshots (2 each): every image
  // is inlined.
  size_t images = 0;
  for (size_t p = html.find("src=\"data:image/png;base64,"); p != std::string::npos;
       p = html.find("src=\"data:image/png;base64,", p + 1)) {
    ++images;
  }
  EXPECT_EQ(images, 13u);
}

TEST_F(ReportSourceTest, HtmlReportOfASelectionReadsOnlyThoseRuns) {
  auto source = Open(true);
  ReportOptions options;
  options.sort = "loss/total";
  options.top = 2;
  auto data = LoadHtmlReportData(*source, "fixture", options);
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_EQ(data->view.runs.size(), 2u);
  EXPECT_EQ(data->metrics.size(), 2u);
  // #5's last finite loss is the lowest, but it diverged: the best two are
  // #2 and #1.
  EXPECT_EQ(data->view.runs[0].index, 2);
  EXPECT_EQ(data->view.runs[1].index, 1);
  EXPECT_THAT(RenderHtmlReport(*data),
              HasSubstr("8 runs: 3 SUCCEEDED, 2 QUEUED, 2 FAILED (1 diverged), 1 PRUNED · showing 2"));
}

TEST_F(ReportSourceTest, ASweepLargerThanAPageIsReadWholeFromTheCoordinator) {
  // 12,001 runs: three pages of at most 5,000.
  constexpr int kRuns = 12001;
  {
    auto store = OpenSqliteStore((dir_ / "f.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    NewSweep sweep;
    sweep.name = "large";
    sweep.yaml = "name: large\n";
    sweep.spec_json = "{}";
    std::vector<NewRun> runs;
    for (int i = 0; i < kRuns; ++i) runs.push_back(NewRun{i, "{}", absl::StrCat("h", i), ""});
    ASSERT_TRUE((*store)->CreateSweep(sweep, runs).ok());
  }
  for (bool from_coordinator : {true, false}) {
    auto source = Open(from_coordinator);
    auto view = source->GetSweep("large");
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ(view->runs.size(), static_cast<size_t>(kRuns)) << from_coordinator;
    for (int i = 0; i < kRuns; ++i) ASSERT_EQ(view->runs[i].index, i);
    EXPECT_EQ(view->counts.at("QUEUED"), kRuns);
    // And a run named by its index on the last page.
    auto id = ResolveRunId(*source, "large#12000");
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, view->runs.back().id);

    // The listing counts every sweep's runs without reading them.
    auto list = source->ListSweeps();
    ASSERT_TRUE(list.ok()) << list.status();
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].counts, (std::map<std::string, int>{{"SUCCEEDED", 3}, {"QUEUED", 2}, {"FAILED", 2},
                                                             {"PRUNED", 1}}));
    EXPECT_EQ((*list)[1].sweep.name, "large");
    EXPECT_EQ((*list)[1].counts, (std::map<std::string, int>{{"QUEUED", kRuns}}));
    EXPECT_TRUE((*list)[1].runs.empty());
    EXPECT_TRUE((*list)[1].sweep.spec_json.empty()) << "listings leave the sweeps' text out";
  }
}

TEST_F(ReportSourceTest, CompareFromTheCoordinatorIsTheSameAsFromTheDatabase) {
  for (const char* format : {"table", "json"}) {
    CompareOptions options;
    options.format = format;
    auto local_source = Open(false);
    auto remote_source = Open(true);
    auto local = LoadComparison(*local_source, "fixture#1", "3");
    auto remote = LoadComparison(*remote_source, "fixture#1", "3");
    ASSERT_TRUE(local.ok()) << local.status();
    ASSERT_TRUE(remote.ok()) << remote.status();
    EXPECT_EQ(*RenderComparison(*remote, options), *RenderComparison(*local, options)) << format;
  }
  auto remote_source = Open(true);
  auto missing = LoadComparison(*remote_source, "1", "99");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr("no run with id 99"));
}

TEST_F(ReportSourceTest, FetchArtifactRefusesPathsOutsideTheArtifactsDirectory) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::Coordinator::NewStub(channel);
  auto fetch = [&](const std::string& path, std::string* data = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FetchArtifactRequest request;
    request.set_path(path);
    v1::FetchArtifactResponse response;
    grpc::Status status = stub->FetchArtifact(&context, request, &response);
    if (data != nullptr) *data = response.data();
    return status;
  };
  std::string png;
  ASSERT_TRUE(fetch("1-fixture/run-0/attempt-1/final.png", &png).ok());
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n");

  // The database sits beside the artifacts directory; /etc/passwd anywhere.
  fs::create_symlink(dir_ / "f.db", dir_ / "artifacts" / "link.db");
  for (const std::string& path : {std::string("../f.db"), std::string("1-fixture/../../f.db"),
                                  std::string("/etc/passwd"), std::string("link.db"), std::string("")}) {
    grpc::Status status = fetch(path);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "'" << path << "': " << status.error_message();
  }
  EXPECT_EQ(fetch("1-fixture/run-9/final.png").error_code(), grpc::StatusCode::NOT_FOUND);
}

// A run with more losses than one reply carries (100,000 rows) is read whole
// from the coordinator, in order, the same as from the database.
TEST_F(ReportSourceTest, ALongRunsLossesAreReadWholeFromTheCoordinator) {
  constexpr int kRows = 150001;
  int64_t run_id = 0;
  {
    auto store = OpenSqliteStore((dir_ / "f.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    auto lease = (*store)->ClaimNextRun("long", 0, 1);  // a queued run of the fixture
    ASSERT_TRUE(lease.ok() && lease->has_value());
    run_id = (*lease)->run.id;
    std::vector<MetricRow> rows;
    for (int step = 0; step < kRows; ++step) rows.push_back(MetricRow{step, 1, 2, 3, 6, 0.01});
    ASSERT_TRUE((*store)->AppendMetrics(run_id, (*lease)->attempt, rows).ok());
  }
  auto details = Open(true)->GetRun(run_id, /*with_metrics=*/true, /*with_snapshots=*/true);
  ASSERT_TRUE(details.ok()) << details.status();
  ASSERT_EQ(details->metrics.size(), static_cast<size_t>(kRows));
  for (int step = 0; step < kRows; ++step) ASSERT_EQ(details->metrics[step].step, step);
  auto local = Open(false)->GetRun(run_id, true, true);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->metrics.size(), details->metrics.size());
}

// More sweeps than one reply lists (10,000) are all listed through the
// coordinator, each once; a raw client can ask for smaller pages.
TEST_F(ReportSourceTest, MoreSweepsThanAPageAreAllListedFromTheCoordinator) {
  constexpr int kMore = 10050;
  {
    auto store = OpenSqliteStore((dir_ / "f.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < kMore; ++i) {
      NewSweep sweep;
      sweep.name = absl::StrCat("empty-", i);
      sweep.source = "empty.yaml";
      sweep.yaml = "name: empty\n";
      sweep.spec_json = "{}";
      ASSERT_TRUE((*store)->CreateSweep(sweep, {}).ok());
    }
  }
  auto listed = Open(true)->ListSweeps();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), static_cast<size_t>(kMore + 1));
  for (size_t i = 0; i < listed->size(); ++i) ASSERT_EQ((*listed)[i].sweep.id, static_cast<int64_t>(i + 1));
  EXPECT_EQ((*listed)[0].counts.at("SUCCEEDED"), 3);  // the fixture's sweep, with its totals

  auto stub = v1::Coordinator::NewStub(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  v1::GetSweepRequest request;
  request.set_page_size(4000);
  std::vector<int64_t> ids;
  do {
    v1::GetSweepResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetSweep(&context, request, &response).ok());
    ASSERT_LE(response.sweeps_size(), 4000);
    for (const v1::SweepSummary& sweep : response.sweeps()) ids.push_back(sweep.id());
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  EXPECT_EQ(ids.size(), static_cast<size_t>(kMore + 1));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
}

}  // namespace
}  // namespace stylesweep
