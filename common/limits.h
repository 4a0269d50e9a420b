#ifndef STYLESWEEP_COMMON_LIMITS_H_
#define STYLESWEEP_COMMON_LIMITS_H_

// The largest inputs stylesweep accepts. Each is checked before the input is
// read whole or parsed, by the CLI (so a user hears at once, with the path)
// and again by the coordinator, which trusts no client to have checked.
// README, "Limits", lists them for users.

#include <cstdint>
#include <string>

namespace stylesweep {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;

// A sweep file's YAML text. Real sweeps are a few kilobytes; the parser's
// memory grows with the text, so anything larger is refused before parsing.
inline constexpr uint64_t kMaxSweepYamlBytes = 1 * kMiB;

// How deeply '[' and '{' collections may nest in a sweep file. Real sweeps
// nest two or three levels; the YAML parser recurses once per level.
inline constexpr int kMaxSweepYamlDepth = 64;

// One content or style image, as sent with a sweep (encoded PNG or JPEG).
inline constexpr uint64_t kMaxImageBytes = 32 * kMiB;

// All images of one submission together.
inline constexpr uint64_t kMaxSubmissionImageBytes = 48 * kMiB;

// One snapshot (an encoded PNG) an agent uploads for a run.
inline constexpr uint64_t kMaxSnapshotBytes = 32 * kMiB;

// "1 MiB (1048576 bytes)": a limit as error messages and docs state it.
std::string DescribeByteLimit(uint64_t bytes);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_LIMITS_H_
