#ifndef STYLESWEEP_COMMON_SIGNALS_H_
#define STYLESWEEP_COMMON_SIGNALS_H_

#include <functional>
#include <thread>

namespace stylesweep {

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it
// starts afterwards) and returns a thread that calls `on_signal(signo)` for
// each one that arrives, outside signal context, so the callback may lock,
// log and shut servers down. Call before starting other threads. The thread
// runs until the process exits; it is detached.
void HandleTerminationSignals(std::function<void(int)> on_signal);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_SIGNALS_H_
