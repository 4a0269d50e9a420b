#include "coordinator/store/sqlite.h"

#include "tests/coordinator/store/store_contract.h"

namespace stylesweep::sqlite {
namespace {

using ::stylesweep::testing::IsOk;
using ::stylesweep::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Database> db = Database::Open(":memory:", /*read_only=*/false);
    ASSERT_THAT(db, IsOk());
    db_.emplace(*std::move(db));
    ASSERT_THAT(db_->Exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL CHECK (v <> 'bad'))", "create t"),
                IsOk());
  }

  absl::Status Insert(int64_t k, std::string_view v) {
    absl::StatusOr<Statement> insert = db_->Prepare("INSERT INTO t (k, v) VALUES (?1, ?2)", "insert into t");
    if (!insert.ok()) return insert.status();
    insert->Bind(1, k);
    insert->Bind(2, v);
    return insert->Run();
  }

  int64_t Count() {
    absl::StatusOr<Statement> count = db_->Prepare("SELECT count(*) FROM t", "count t");
    EXPECT_THAT(count, IsOk());
    if (!count.ok()) return -1;
    absl::StatusOr<bool> row = count->Step();
    EXPECT_THAT(row, IsOk());
    return row.ok() && *row ? count->ColumnInt64(0) : -1;
  }

  std::optional<Database> db_;
};

TEST_F(SqliteTest, ErrorsSayWhatTheSqlWasForAndWhatSqliteSaid) {
  ASSERT_THAT(Insert(1, "one"), IsOk());
  EXPECT_THAT(Insert(1, "again"), StatusIs(absl::StatusCode::kAlreadyExists,
                                           AllOf(HasSubstr("insert into t"), HasSubstr("UNIQUE constraint failed"))));
  EXPECT_THAT(Insert(2, "bad"), StatusIs(absl::StatusCode::kInvalidArgument,
                                         AllOf(HasSubstr("insert into t"), HasSubstr("CHECK constraint failed"))));
  EXPECT_THAT(db_->Prepare("SELEC nonsense", "read nonsense"),
              StatusIs(absl::StatusCode::kInternal, AllOf(HasSubstr("read nonsense"), HasSubstr("syntax error"))));
  EXPECT_THAT(db_->Exec("DROP TABLE missing", "drop missing"),
              StatusIs(absl::StatusCode::kInternal, AllOf(HasSubstr("drop missing"), HasSubstr("no such table"))));
}

TEST_F(SqliteTest, BindErrorIsReportedByTheNextStep) {
  ASSERT_OK_AND_ASSIGN(Statement select, db_->Prepare("SELECT v FROM t WHERE k = ?1", "find row"));
  select.Bind(2, int64_t{1});
  EXPECT_THAT(select.Step(), StatusIs(absl::StatusCode::kInternal, AllOf(HasSubstr("find row"), HasSubstr("?2"))));
}

TEST_F(SqliteTest, TextRoundTripsIncludingEmptyAndEmbeddedNul) {
  ASSERT_THAT(Insert(1, std::string_view()), IsOk());  // '' even without a pointer, not NULL
  ASSERT_THAT(Insert(2, std::string_view("a\0b", 3)), IsOk());
  ASSERT_OK_AND_ASSIGN(Statement select, db_->Prepare("SELECT v FROM t ORDER BY k", "read rows"));
  ASSERT_OK_AND_ASSIGN(bool first, select.Step());
  ASSERT_TRUE(first);
  EXPECT_EQ(select.ColumnText(0), "");
  ASSERT_OK_AND_ASSIGN(bool second, select.Step());
  ASSERT_TRUE(second);
  EXPECT_EQ(select.ColumnText(0), std::string("a\0b", 3));
  ASSERT_OK_AND_ASSIGN(bool more, select.Step());
  EXPECT_FALSE(more);
}

TEST_F(SqliteTest, TransactionRollsBackUnlessCommitted) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*db_, "abandoned"));
    ASSERT_THAT(Insert(1, "one"), IsOk());
  }
  EXPECT_EQ(Count(), 0);
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*db_, "kept"));
    ASSERT_THAT(Insert(1, "one"), IsOk());
    ASSERT_THAT(txn.Commit(), IsOk());
  }
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTest, StatementRunsAgainAfterReset) {
  ASSERT_OK_AND_ASSIGN(Statement insert, db_->Prepare("INSERT INTO t (k, v) VALUES (?1, 'x')", "insert"));
  for (int64_t k = 1; k <= 3; ++k) {
    insert.Reset();
    insert.Bind(1, k);
    ASSERT_THAT(insert.Run(), IsOk());
  }
  EXPECT_EQ(Count(), 3);
}

}  // namespace
}  // namespace stylesweep::sqlite
