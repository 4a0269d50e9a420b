#ifndef STYLESWEEP_TESTS_COORDINATOR_STORE_STORE_CONTRACT_H_
#define STYLESWEEP_TESTS_COORDINATOR_STORE_STORE_CONTRACT_H_

// The behaviour every Store implementation must show, written once as
// value-parameterised tests (store_contract.cc). An implementation's test
// compiles store_contract.cc in and instantiates the suite with factories:
//
//   INSTANTIATE_TEST_SUITE_P(Mine, StoreContractTest,
//                            testing::Values(StoreFactory{"Mine", OpenMine}), StoreFactoryName);

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stylesweep::testing {

// An empty directory, removed with everything in it on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct StoreFactory {
  std::string name;  // the suffix of the tests' names
  // Opens a new, empty store. `scratch_dir` is empty and outlives the store.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& scratch_dir)> open;
};

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);
// So that test listings show the factory's name rather than its bytes.
void PrintTo(const StoreFactory& factory, std::ostream* out);

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;

  ScratchDir scratch_;
  std::unique_ptr<Store> store_;
};

// Test data: a sweep named `name`, and runs with the given expansion indexes
// (each run's params name its index, so runs are told apart by content too).
NewSweep MakeSweep(const std::string& name, int max_attempts = 3, int64_t created_ms = 1000);
std::vector<NewRun> MakeRuns(const std::vector<int>& indexes);
std::vector<NewRun> MakeRuns(int count);  // indexes 0..count-1
// A row whose losses are all derived from `base`, so rows are told apart.
MetricRow Metric(int step, double base);

// Every field, one line, for comparing records before and after an operation
// that must not change them (the diff in a failure shows which field moved).
std::string Describe(const RunRecord& run);
std::string Describe(const std::vector<AttemptRecord>& attempts);
std::string Describe(const std::vector<MetricRow>& rows);
std::string Describe(const std::vector<SnapshotRecord>& snapshots);

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// EXPECT_THAT(store->RenewLease(...), IsOk());
MATCHER(IsOk, "is OK") {
  *result_listener << StatusOf(arg);
  return StatusOf(arg).ok();
}

// EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, HasSubstr("sweep 9")));
MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& status = StatusOf(arg);
  *result_listener << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()), result_listener);
}

}  // namespace stylesweep::testing

#define STYLESWEEP_CONCAT_INNER(a, b) a##b
#define STYLESWEEP_CONCAT(a, b) STYLESWEEP_CONCAT_INNER(a, b)

// Evaluates `expr` (a StatusOr) once; fails the test unless it is OK, else
// moves its value into `lhs` (a declaration or an lvalue).
#define ASSERT_OK_AND_ASSIGN(lhs, expr) ASSERT_OK_AND_ASSIGN_IMPL(STYLESWEEP_CONCAT(status_or_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(status_or, lhs, expr) \
  auto status_or = (expr);                              \
  ASSERT_TRUE(status_or.ok()) << status_or.status();    \
  lhs = *std::move(status_or)

#endif  // STYLESWEEP_TESTS_COORDINATOR_STORE_STORE_CONTRACT_H_
