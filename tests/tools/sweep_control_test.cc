// `stylesweep delete` against a coordinator in this process: refused while
// runs are queued, then the rows, the artifacts directory and the images no
// other sweep uses are gone.

#include "tools/sweep_control.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "coordinator/server.h"
#include "coordinator/store/store.h"
#include "tests/tools/report_fixture.h"

namespace stylesweep {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class SweepControlTest : public testing::FixtureServerTest {
 protected:
  void SetUp() override {
    FixtureServerTest::SetUp();
    if (server_ == nullptr) return;
    stub_ = v1::Coordinator::NewStub(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  // Files under the artifacts directory, by path relative to it.
  std::vector<std::string> Files() const {
    std::vector<std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir_ / "artifacts")) {
      if (entry.is_regular_file()) files.push_back(fs::relative(entry.path(), dir_ / "artifacts").string());
    }
    return files;
  }

  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(SweepControlTest, DeleteIsRefusedWhileRunsAreQueuedAndRemovesEverythingWithCancel) {
  ASSERT_TRUE(fs::exists(dir_ / "artifacts/1-fixture/run-0/attempt-1/final.png"));
  const size_t files_before = Files().size();
  ASSERT_EQ(files_before, 10u);  // 8 snapshots and the 2 input images

  auto refused = DeleteSweep(*stub_, {}, "fixture", /*cancel_first=*/false);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("still has 2 queued or running runs; cancel it first"));
  EXPECT_EQ(Files().size(), files_before);  // nothing removed

  auto deleted = DeleteSweep(*stub_, {}, "fixture", /*cancel_first=*/true);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->sweep_id(), 1);
  EXPECT_EQ(deleted->runs(), 8);
  EXPECT_EQ(deleted->metric_rows(), 24);  // 5 rows for each of #0 to #2, 3 for each of #3 to #5
  EXPECT_EQ(deleted->blobs_removed(), 2);
  EXPECT_GT(deleted->bytes_freed(), 0);
  EXPECT_THAT(DescribeDeletion(*deleted),
              MatchesRegex("sweep 1 'fixture' deleted: 8 runs, 24 loss rows, 2 images, [0-9.]+ (B|KiB) freed"));

  // The database no longer has the sweep or its runs, and no file is left.
  EXPECT_TRUE(Files().empty()) << ::testing::PrintToString(Files());
  EXPECT_FALSE(fs::exists(dir_ / "artifacts/1-fixture"));
  SqliteStoreOptions read_only;
  read_only.read_only = true;
  auto store = OpenSqliteStore((dir_ / "f.db").string(), read_only);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsNotFound((*store)->FindSweep("fixture").status()));
  for (int64_t run_id = 1; run_id <= 8; ++run_id) {
    EXPECT_TRUE(absl::IsNotFound((*store)->GetRun(run_id).status())) << run_id;
  }
  auto sweeps = (*store)->ListSweeps(false);
  ASSERT_TRUE(sweeps.ok());
  EXPECT_TRUE(sweeps->empty());

  auto again = DeleteSweep(*stub_, {}, "fixture", true);
  EXPECT_TRUE(absl::IsNotFound(again.status())) << again.status();
}

TEST(SweepControlFormatTest, CountsAndSizesReadEasily) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(3600), "3,600");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatSize(812), "812 B");
  EXPECT_EQ(FormatSize(4300), "4.2 KiB");
  EXPECT_EQ(FormatSize(4300000), "4.1 MiB");
  EXPECT_EQ(FormatSize(int64_t{3} << 30), "3.0 GiB");
  v1::DeleteSweepResponse one;
  one.set_sweep_id(3);
  one.set_name("tiny");
  one.set_runs(1);
  one.set_metric_rows(1);
  one.set_blobs_removed(1);
  EXPECT_EQ(DescribeDeletion(one), "sweep 3 'tiny' deleted: 1 run, 1 loss row, 1 image, 0 B freed");
}

}  // namespace
}  // namespace stylesweep
