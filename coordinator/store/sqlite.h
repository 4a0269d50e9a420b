#ifndef STYLESWEEP_COORDINATOR_STORE_SQLITE_H_
#define STYLESWEEP_COORDINATOR_STORE_SQLITE_H_

// A thin RAII layer over the SQLite C API: a connection, a prepared statement
// and a transaction, each closing what it opened, and every SQLite error
// turned into an absl::Status whose message says what the SQL was for and
// what SQLite said ("create sweep 'x': insert run: UNIQUE constraint failed:
// runs.sweep_id, runs.idx").
//
// Status codes: a busy or locked database is Unavailable (worth retrying);
// a UNIQUE or PRIMARY KEY violation AlreadyExists; another constraint
// violation InvalidArgument; a write the file's permissions forbid
// PermissionDenied; a corrupt file or one that is no database DataLoss; a
// full disk ResourceExhausted; anything else Internal.
//
// None of these classes is thread-safe: a connection and its statements must
// be used by one thread at a time (SqliteStore holds a mutex around them).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace stylesweep::sqlite {

class Statement;

// An open connection. Its Statements may outlive it: the close then waits
// (sqlite3_close_v2) until the last of them is destroyed.
class Database {
 public:
  // Opens `path` (":memory:" for a private in-memory database). Read-only
  // never creates the file; read-write creates it when missing. Extended
  // result codes are on, so errors can be told apart (UNIQUE vs CHECK).
  static absl::StatusOr<Database> Open(const std::string& path, bool read_only);

  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more ';'-separated statements, discarding any rows (pragmas,
  // migrations, BEGIN/COMMIT).
  absl::Status Exec(const std::string& sql, std::string_view purpose);

  // Compiles one statement. `purpose` prefixes every error it reports.
  absl::StatusOr<Statement> Prepare(std::string_view sql, std::string purpose);

  // The rowid of the last INSERT on this connection.
  int64_t LastInsertRowId() const;
  // Rows changed by the last INSERT, UPDATE or DELETE on this connection.
  int Changes() const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}

  friend class Transaction;
  sqlite3* db_;
};

// A compiled statement. Parameters are bound by 1-based index (write them as
// ?1, ?2, ... in the SQL); columns are read by 0-based index while Step() has
// just returned true.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // A failed bind is remembered and returned by the next Step or Run, so a
  // run of binds needs no checks of its own. Text is copied.
  void Bind(int index, int64_t value);
  void Bind(int index, int value);
  void Bind(int index, double value);
  void Bind(int index, std::string_view value);

  // Advances: true when a row is ready to read, false when the statement is
  // done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements that return no rows.
  absl::Status Run();
  // Makes the statement ready to step again from the start; bindings stay
  // until rebound.
  void Reset();

  int64_t ColumnInt64(int column) const;
  int ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, std::string purpose) : stmt_(stmt), purpose_(std::move(purpose)) {}
  void NoteBindError(int rc, int index);

  sqlite3_stmt* stmt_;
  std::string purpose_;
  absl::Status bind_error_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back on destruction unless Commit()
// succeeded, so an early `return status;` leaves nothing half-written.
// IMMEDIATE takes the write lock up front (waiting up to the busy timeout):
// a deferred transaction that reads and then writes can instead fail
// SQLITE_BUSY half-way, without waiting, when another connection writes.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database& db, std::string_view purpose);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // Call at most once. Statements that write must have run to completion.
  absl::Status Commit();

 private:
  Transaction(Database& db, std::string purpose) : db_(&db), purpose_(std::move(purpose)) {}

  Database* db_;  // null once committed or moved from
  std::string purpose_;
};

}  // namespace stylesweep::sqlite

#endif  // STYLESWEEP_COORDINATOR_STORE_SQLITE_H_
