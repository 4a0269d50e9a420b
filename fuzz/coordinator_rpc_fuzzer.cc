// Fuzzes the Coordinator service as clients and agents reach it: each input
// is a sequence of calls (see coordinator_rpc_harness.h), run against a fresh
// coordinator, so that a crash replays from its input alone. The seed corpus
// holds whole sessions (a sweep submitted, agents registered, runs leased,
// reported, completed; see coordinator_rpc_seeds.cc) for the mutations to
// start deep in the protocol.
//
// The coordinator's files go to a directory under $TMPDIR, or else under
// /dev/shm where there is one (a tmpfs: several times faster than a disk),
// removed at exit.

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "fuzz/coordinator_rpc_harness.h"

namespace {

std::string* work_dir = nullptr;
stylesweep::fuzz::CoordinatorHarness* harness = nullptr;

std::filesystem::path TemporaryRoot() {
  std::error_code ec;
  if (std::getenv("TMPDIR") == nullptr && std::filesystem::is_directory("/dev/shm", ec)) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

void RemoveWorkDir() {
  std::error_code ec;
  std::filesystem::remove_all(*work_dir, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  spdlog::set_level(spdlog::level::off);  // the scheduler logs every submission
  // Requests whose strings are not UTF-8 are refused (as gRPC refuses them);
  // protobuf would log each.
  google::protobuf::SetLogHandler(nullptr);
  std::string dir = (TemporaryRoot() / "coordinator_rpc_fuzzer.XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror(dir.c_str());
    std::abort();
  }
  work_dir = new std::string(dir);
  std::atexit(RemoveWorkDir);
  harness = new stylesweep::fuzz::CoordinatorHarness(*work_dir);
  return 0;
}

// libFuzzer's own mutation of bytes, for the mutator below.
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// Mutates the sequence a call at a time, keeping its framing: a byte changed
// in one request leaves the calls after it as they were, so that a session
// deep in the protocol stays deep. Now and then the whole input is mutated
// as bytes instead, as libFuzzer would.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  using stylesweep::fuzz::Action;
  std::minstd_rand random(seed);
  std::vector<stylesweep::fuzz::Call> calls =
      stylesweep::fuzz::DecodeCalls(std::string_view(reinterpret_cast<const char*>(data), size));
  if (calls.empty() || random() % 8 == 0) return LLVMFuzzerMutate(data, size, max_size);
  const size_t i = random() % calls.size();
  switch (random() % 8) {
    case 0:  // another method, the same bytes
      calls[i].action = static_cast<Action>(random() % stylesweep::fuzz::kActionCount);
      break;
    case 1:  // one call fewer
      calls.erase(calls.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    case 2:  // the same call again: a client's retry
      calls.insert(calls.begin() + static_cast<std::ptrdiff_t>(i), calls[i]);
      break;
    case 3:  // two calls the other way round
      std::swap(calls[i], calls[random() % calls.size()]);
      break;
    default: {  // one request's bytes
      std::string& payload = calls[i].payload;
      const size_t used = payload.size();
      const size_t room = max_size > size ? max_size - size : 0;
      payload.resize(std::min<size_t>(used + room, 0xffff));
      payload.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(payload.data()), used, payload.size()));
      break;
    }
  }
  std::string mutated;
  for (const auto& call : calls) mutated += stylesweep::fuzz::EncodeCall(call.action, call.payload);
  if (mutated.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::copy(mutated.begin(), mutated.end(), data);
  return mutated.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  harness->Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
