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

// The pixels an image (content, style or snapshot) may declare in its
// header: 64 Mi, 8192 x 8192. Byte limits do not bound an image's cost:
// a PNG of a few hundred kilobytes can declare 15000 x 15000 pixels. An
// agent holds each input decoded twice before scaling it down to
// image_size: 8-bit samples (3-4 bytes a pixel) and a float RGB copy (12
// bytes a pixel), so at this limit an image costs about 1 GiB of host memory
// for a moment, and the 15000 x 15000 one 3.5 GB. The header says the size
// (common/image_header.h), so it is checked before anything is decoded.
inline constexpr uint64_t kMaxImagePixels = uint64_t{8192} * 8192;

// "64 Mi pixels (67108864, e.g. 8192x8192)": the pixel limit as error
// messages and docs state it.
std::string DescribePixelLimit();

// "1 MiB (1048576 bytes)": a limit as error messages and docs state it.
std::string DescribeByteLimit(uint64_t bytes);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_LIMITS_H_
