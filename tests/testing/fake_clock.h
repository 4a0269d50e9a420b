#ifndef STYLESWEEP_TESTS_TESTING_FAKE_CLOCK_H_
#define STYLESWEEP_TESTS_TESTING_FAKE_CLOCK_H_

#include <atomic>

#include "common/clock.h"

namespace stylesweep::testing {

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMillis() const override { return now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_FAKE_CLOCK_H_
