#ifndef STYLESWEEP_COORDINATOR_HTTP_HTTP_LIMITS_H_
#define STYLESWEEP_COORDINATOR_HTTP_HTTP_LIMITS_H_

// The HTTP server's limits as one value, so that tests can shorten the times.
// connection_limits.h enforces them.

#include <chrono>
#include <cstdint>

#include "common/limits.h"

namespace stylesweep {

// Defaults from common/limits.h, which explains each.
struct HttpLimits {
  int workers = kHttpWorkers;
  int max_connections = kMaxHttpConnections;
  std::chrono::milliseconds head_timeout = std::chrono::seconds(kHttpHeadSeconds);
  uint64_t max_head_bytes = kMaxHttpHeadBytes;
  uint64_t max_body_bytes = kMaxHttpBodyBytes;
  std::chrono::milliseconds watchdog_interval = std::chrono::milliseconds(kHttpWatchdogMillis);
  int read_timeout_seconds = kHttpReadTimeoutSeconds;
  int write_timeout_seconds = kHttpWriteTimeoutSeconds;
  int keep_alive_seconds = kHttpKeepAliveSeconds;
};

// How often each limit was hit, for tests and logs.
struct ConnectionLimitCounts {
  int64_t refused = 0;         // over max_connections
  int64_t head_too_slow = 0;   // head_timeout passed
  int64_t head_too_large = 0;  // max_head_bytes passed
  int64_t body_refused = 0;    // 411 or 413
  int64_t untracked = 0;       // served without limits: the socket was not found
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_HTTP_HTTP_LIMITS_H_
