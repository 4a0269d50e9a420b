#include "coordinator/store/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace stylesweep::sqlite {
namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ? absl::StatusCode::kAlreadyExists
                                                                                  : absl::StatusCode::kInvalidArgument;
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status Error(int rc, const char* message, std::string_view purpose) {
  return absl::Status(CodeFor(rc), absl::StrCat(std::string(purpose), ": ", message));
}

// The connection's own message ("UNIQUE constraint failed: runs.idx") says
// more than sqlite3_errstr's generic one ("constraint failed").
absl::Status Error(int rc, sqlite3* db, std::string_view purpose) {
  return Error(rc, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), purpose);
}

// SQLite creates a database file with mode 0644 less the umask, and its
// -wal and -shm files with the database file's mode. The database holds
// everyone's sweeps: create it 0600 first, so that all three are owner-only.
// An existing file keeps the mode it has.
absl::Status CreateOwnerOnly(const std::string& path) {
  if (path.empty() || path == ":memory:") return absl::OkStatus();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  // It exists already, or cannot be created: SQLite's own open reports why.
  if (fd < 0) return absl::OkStatus();
  const bool restricted = ::fchmod(fd, 0600) == 0;
  const int err = errno;
  ::close(fd);
  if (!restricted) {
    ::unlink(path.c_str());
    return absl::PermissionDeniedError(absl::StrCat("cannot restrict ", path, " to its owner: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Database> Database::Open(const std::string& path, bool read_only) {
  if (!read_only) {
    if (absl::Status s = CreateOwnerOnly(path); !s.ok()) return s;
  }
  // NOMUTEX: the caller serialises use of the connection, so SQLite's own
  // per-call locking would be paid for nothing.
  int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = Error(rc, db, absl::StrCat("open ", path));
    sqlite3_close(db);  // a handle comes back even on failure, unless out of memory
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return Database(db);
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::Status Database::Exec(const std::string& sql, std::string_view purpose) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status status = message != nullptr ? Error(rc, message, purpose) : Error(rc, db_, purpose);
  sqlite3_free(message);
  return status;
}

absl::StatusOr<Statement> Database::Prepare(std::string_view sql, std::string purpose) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, db_, absl::StrCat(purpose, ": prepare"));
  return Statement(stmt, std::move(purpose));
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int Database::Changes() const { return sqlite3_changes(db_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      purpose_(std::move(other.purpose_)),
      bind_error_(std::move(other.bind_error_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    purpose_ = std::move(other.purpose_);
    bind_error_ = std::move(other.bind_error_);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::NoteBindError(int rc, int index) {
  if (rc == SQLITE_OK || !bind_error_.ok()) return;
  bind_error_ = Error(rc, sqlite3_db_handle(stmt_), absl::StrCat(purpose_, ": bind ?", index));
}

void Statement::Bind(int index, int64_t value) { NoteBindError(sqlite3_bind_int64(stmt_, index, value), index); }

void Statement::Bind(int index, int value) { NoteBindError(sqlite3_bind_int(stmt_, index, value), index); }

void Statement::Bind(int index, double value) { NoteBindError(sqlite3_bind_double(stmt_, index, value), index); }

void Statement::Bind(int index, std::string_view value) {
  // A null pointer would bind SQL NULL, not '': an empty string_view may
  // have one.
  const char* data = value.data() != nullptr ? value.data() : "";
  NoteBindError(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8), index);
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(rc, sqlite3_db_handle(stmt_), purpose_);
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  // sqlite3_reset repeats the last step's error, which Step already reported.
  sqlite3_reset(stmt_);
}

int64_t Statement::ColumnInt64(int column) const { return sqlite3_column_int64(stmt_, column); }

int Statement::ColumnInt(int column) const { return sqlite3_column_int(stmt_, column); }

double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

bool Statement::ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

absl::StatusOr<Transaction> Transaction::Begin(Database& db, std::string_view purpose) {
  absl::Status begun = db.Exec("BEGIN IMMEDIATE", absl::StrCat(std::string(purpose), ": begin"));
  if (!begun.ok()) return begun;
  return Transaction(db, std::string(purpose));
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), purpose_(std::move(other.purpose_)) {}

Transaction::~Transaction() {
  // Some errors (a full disk, an I/O error) already rolled the transaction
  // back; a second ROLLBACK would only fail.
  if (db_ != nullptr && !sqlite3_get_autocommit(db_->db_)) {
    sqlite3_exec(db_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::Status Transaction::Commit() {
  absl::Status committed = db_->Exec("COMMIT", absl::StrCat(purpose_, ": commit"));
  if (committed.ok()) db_ = nullptr;
  return committed;
}

}  // namespace stylesweep::sqlite
