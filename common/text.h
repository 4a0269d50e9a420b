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

// The offset of the first byte of `text` that is not part of well-formed
// UTF-8 (RFC 3629: shortest forms only, no surrogates, nothing above
// U+10FFFF); std::string_view::npos when every byte is. JSON and protobuf
// strings must be UTF-8, so text bound for them is checked where it enters.
size_t FirstInvalidUtf8(std::string_view text);

// `text` with each byte that is not part of valid UTF-8 replaced by U+FFFD,
// for a name that must travel as UTF-8 (JSON, protocol messages) and is only
// shown, never used to open a file.
std::string ToValidUtf8(std::string_view text);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_TEXT_H_
