#ifndef STYLESWEEP_COMMON_TEXT_H_
#define STYLESWEEP_COMMON_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

namespace stylesweep {

// Edit distance counting a swap of neighbouring characters as one edit.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible
// typo (distance <= max(2, len/3)); empty otherwise. Used for "did you mean".
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_TEXT_H_
