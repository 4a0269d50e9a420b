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

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  harness->Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
