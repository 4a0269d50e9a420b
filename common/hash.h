#ifndef STYLESWEEP_COMMON_HASH_H_
#define STYLESWEEP_COMMON_HASH_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace stylesweep {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// `bytes` bytes from the system's cryptographic random generator, as
// lower-case hex (2 * bytes digits): secrets, salts, session ids. Internal
// when the generator fails.
absl::StatusOr<std::string> RandomHex(size_t bytes);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_HASH_H_
