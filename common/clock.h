#ifndef STYLESWEEP_COMMON_CLOCK_H_
#define STYLESWEEP_COMMON_CLOCK_H_

#include <cstdint>

namespace stylesweep {

// Wall-clock time in milliseconds since the Unix epoch, injected so that lease
// expiry and heartbeats are tested without sleeping. Implementations are
// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMillis() const = 0;
};

// The process-wide real clock.
Clock& SystemClock();

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_CLOCK_H_
