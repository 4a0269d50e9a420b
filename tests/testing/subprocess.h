#ifndef STYLESWEEP_TESTS_TESTING_SUBPROCESS_H_
#define STYLESWEEP_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace stylesweep::testing {

// A child process for integration tests: stdout and stderr go to a log file,
// and the destructor kills (SIGKILL) and reaps it if still running.
class Subprocess {
 public:
  Subprocess(std::vector<std::string> argv, std::string log_path);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Signal(int signo);
  // Waits for exit; returns the exit status (128+signal when killed).
  int Wait();
  bool Running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// The full path of a program found on the PATH, or "" when there is none:
// tests that need an outside tool (chromium, promtool, openssl) skip, saying
// so, without it.
std::string FindProgram(const std::string& name);

// Runs to completion and returns the exit status; output goes to *output.
// argv[0] may be a path or a program name looked up on the PATH.
int RunCommand(const std::vector<std::string>& argv, std::string* output);

// Polls `condition` every 50 ms until it holds or `timeout_ms` passes.
// For waiting on other processes, never for timing behaviour.
bool WaitUntil(const std::function<bool()>& condition, int timeout_ms);

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_SUBPROCESS_H_
