#ifndef STYLESWEEP_COMMON_LIMITS_H_
#define STYLESWEEP_COMMON_LIMITS_H_

// The largest inputs stylesweep accepts. Each is checked before the input is
// read whole or parsed, by the CLI (so a user hears at once, with the path)
// and again by the coordinator, which trusts no client to have checked.
// README, "Limits", lists them for users.

#include <cstdint>
#include <string>

namespace stylesweep {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;

// A sweep file's YAML text. Real sweeps are a few kilobytes; the parser's
// memory grows with the text, so anything larger is refused before parsing.
inline constexpr uint64_t kMaxSweepYamlBytes = 1 * kMiB;

// How deeply a sweep file may nest: block levels (indentation, and "- " or
// "? " entries that nest on one line) and '[' '{' collections together, and
// parameter groups reached through aliases. Real sweeps nest two to four
// levels; the YAML parser recurses once per level (yaml-cpp gave up at 500
// with "bad file"), and an alias can make a group hold itself.
inline constexpr int kMaxSweepYamlDepth = 64;

// One content or style image, as sent with a sweep (encoded PNG or JPEG).
inline constexpr uint64_t kMaxImageBytes = 32 * kMiB;

// All images of one submission together.
inline constexpr uint64_t kMaxSubmissionImageBytes = 48 * kMiB;

// One snapshot (an encoded PNG) an agent uploads for a run.
inline constexpr uint64_t kMaxSnapshotBytes = 32 * kMiB;

// The coordinator's HTTP server (dashboard, /metrics, probes). It serves each
// connection on a thread of its own, so these bound what one client, or many
// slow ones, can hold: memory, threads and time.

// A request body. The only request with one is the /login form (a token and
// a path); a larger body is refused with 413 before any of it is read, and a
// body without Content-Length (chunked) with 411.
inline constexpr uint64_t kMaxHttpBodyBytes = 16 * kKiB;

// A request's line and headers together. Browsers send one or two KiB. Checked
// every kHttpWatchdogMillis against the bytes the connection has received,
// after which the connection is closed.
inline constexpr uint64_t kMaxHttpHeadBytes = 64 * kKiB;

// How long a connection may take to deliver a request line and headers: from
// being accepted (the TLS handshake included), or from the end of the last
// response plus kHttpKeepAliveSeconds. Counted in total, not per read, so a
// client sending a header line every few seconds is closed all the same.
inline constexpr int kHttpHeadSeconds = 10;

// How often the request-head limits above are checked.
inline constexpr int kHttpWatchdogMillis = 50;

// One read from, or one write to, a connection that stalls.
inline constexpr int kHttpReadTimeoutSeconds = 5;
inline constexpr int kHttpWriteTimeoutSeconds = 5;

// How long an idle connection is kept open for the browser's next request.
inline constexpr int kHttpKeepAliveSeconds = 5;

// Threads serving connections, started as connections need them. One slow
// client holds one until a limit above closes it, so this is what lets probes
// and dashboards through while slow clients wait out their limits.
inline constexpr int kHttpWorkers = 128;

// Connections open at once, served or waiting for a thread. Beyond this a new
// connection is answered 503 (over TLS: closed) at once rather than queued.
inline constexpr int kMaxHttpConnections = 256;
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
