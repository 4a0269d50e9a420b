#ifndef STYLESWEEP_FUZZ_COORDINATOR_RPC_HARNESS_H_
#define STYLESWEEP_FUZZ_COORDINATOR_RPC_HARNESS_H_

// A coordinator that runs a sequence of Coordinator calls read from bytes:
// the fuzz target's input, and how its seed corpus is made.
//
// An input is a sequence of calls, each
//   1 byte    what to do: the byte modulo kActionCount (an Action)
//   2 bytes   n, little endian
//   n bytes   the serialized request (a call cut short takes what is left)
// For kAdvanceClock the bytes are a little-endian count of milliseconds (at
// most 4 bytes read). At most kMaxCalls calls of an input run; the rest are
// ignored.
//
// Each input runs against a fresh coordinator: an empty store, a scheduler
// on a fake clock, an empty artifacts directory. So an input does the same
// whatever ran before it, and a crash replays from its input alone.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/message.h"

namespace stylesweep::fuzz {

// The Coordinator service's methods in the order protos/stylesweep/v1/
// coordinator.proto declares them, then what else an input may do.
enum class Action : uint8_t {
  kSubmitSweep,
  kGetSweep,
  kControlSweep,
  kDeleteSweep,
  kRegisterAgent,
  kLeaseRun,
  kFetchBlob,
  kHeartbeat,
  kReportMetrics,
  kUploadSnapshot,
  kCompleteRun,
  kReleaseRun,
  kListAgents,
  kReleaseAgent,
  kGetRun,
  kFetchArtifact,
  kAdvanceClock,  // time passes: leases run out, agents fall silent
};
inline constexpr int kActionCount = static_cast<int>(Action::kAdvanceClock) + 1;
inline constexpr int kMaxCalls = 48;

// "SubmitSweep", ..., "AdvanceClock".
std::string ActionName(Action action);

// One call as an input encodes it. The payload is cut at 65535 bytes.
struct Call {
  Action action;
  std::string payload;
};
std::string EncodeCall(Action action, std::string_view payload);
std::string EncodeCall(Action action, const google::protobuf::Message& request);
std::string EncodeAdvanceClock(uint32_t ms);

// Every call of an input, as Run reads them (also beyond kMaxCalls).
std::vector<Call> DecodeCalls(std::string_view input);

// The coordinator under test. Not thread-safe: one input at a time.
class CoordinatorHarness {
 public:
  // `work_dir` must exist and is the harness's own: it holds the store and
  // the artifacts, made afresh for every input. On a tmpfs (/dev/shm) the
  // harness runs several times faster than on a disk, whose every sync
  // counts. Aborts when Action no longer matches the service's methods.
  explicit CoordinatorHarness(std::string work_dir);

  // What one call did: its status and, unless the request did not decode or
  // the action is kAdvanceClock, its reply.
  using CallObserver =
      std::function<void(Action action, const grpc::Status& status, const google::protobuf::Message* reply)>;

  // Runs the calls of `input` against a fresh coordinator, showing each to
  // `on_call` when given. Aborts, as a crash the fuzzer reports, when a reply
  // would not reach a client: one a client cannot parse back. Exceptions out
  // of the service are not caught.
  void Run(std::string_view input, const CallObserver& on_call = nullptr);

 private:
  std::string work_dir_;
};

}  // namespace stylesweep::fuzz

#endif  // STYLESWEEP_FUZZ_COORDINATOR_RPC_HARNESS_H_
