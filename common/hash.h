#ifndef STYLESWEEP_COMMON_HASH_H_
#define STYLESWEEP_COMMON_HASH_H_

#include <string>
#include <string_view>

namespace stylesweep {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_HASH_H_
