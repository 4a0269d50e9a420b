#ifndef STYLESWEEP_COORDINATOR_STORE_MIGRATIONS_H_
#define STYLESWEEP_COORDINATOR_STORE_MIGRATIONS_H_

#include <vector>

namespace stylesweep {

// One file of schemas/, compiled into the binary (see embed_migrations.cmake)
// so that a coordinator never needs the source tree at run time.
struct Migration {
  int version;            // the file name's number: 1 for 0001_initial.sql
  const char* file_name;  // "0001_initial.sql"
  const char* sql;        // the file's text
};

// Every migration, in ascending version order. The build fails on a file
// name without a number or on two files with the same number, so versions
// are unique and start at 1 or above.
const std::vector<Migration>& EmbeddedMigrations();

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_STORE_MIGRATIONS_H_
