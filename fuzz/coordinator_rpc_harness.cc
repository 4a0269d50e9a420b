#include "fuzz/coordinator_rpc_harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <utility>

#include "coordinator/artifacts/artifact_store.h"
#include "coordinator/auth/authenticator.h"
#include "coordinator/rpc/coordinator_service.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "google/protobuf/descriptor.h"
#include "stylesweep/v1/coordinator.pb.h"
#include "tests/testing/fake_clock.h"

namespace stylesweep::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "coordinator_rpc: %s\n", what.c_str());
  std::abort();
}

const google::protobuf::ServiceDescriptor& Service() {
  return *v1::SubmitSweepRequest::descriptor()->file()->FindServiceByName("Coordinator");
}

// How calls are authorised, in one place: no credential is configured, so
// the coordinator is open (as on loopback without tokens) and every call acts
// with every role, as any agent. To fuzz with credentials, give AuthSettings
// a shared token or create scoped tokens in the store, and let Authorize put
// each call's bearer token in its context
// (grpc::testing::ServerContextTestSpouse adds client metadata).
AuthSettings Credentials() { return AuthSettings{}; }
void Authorize(grpc::ServerContext& context) {}

std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto store = OpenSqliteStore(path);
  if (!store.ok()) Fail("cannot open a store: " + std::string(store.status().message()));
  return *std::move(store);
}

// One coordinator, as the server assembles it (coordinator/server.cc).
struct Coordinator {
  Coordinator(const std::string& store_path, const std::string& artifacts_dir)
      : store(OpenStore(store_path)), artifacts(artifacts_dir), scheduler(*store, artifacts, clock),
        authenticator(*store, clock, Credentials()), service(scheduler, *store, artifacts_dir, authenticator) {}

  testing::FakeClock clock;
  std::unique_ptr<Store> store;
  ArtifactStore artifacts;
  Scheduler scheduler;
  Authenticator authenticator;
  CoordinatorService service;
};

template <typename Request, typename Reply>
void Invoke(CoordinatorService& service,
            grpc::Status (CoordinatorService::*method)(grpc::ServerContext*, const Request*, Reply*), Action action,
            std::string_view payload, const CoordinatorHarness::CallObserver& on_call) {
  if (Request::descriptor() != Service().method(static_cast<int>(action))->input_type()) {
    Fail("Action " + ActionName(action) + " calls the method that takes " + Request::descriptor()->name() +
         ": fuzz::Action is out of the service's order");
  }
  Request request;
  // As gRPC would: a request that does not decode (a string field that is
  // not UTF-8 too) never reaches the service.
  if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    if (on_call) on_call(action, grpc::Status(grpc::StatusCode::INTERNAL, "the request does not decode"), nullptr);
    return;
  }
  grpc::ServerContext context;
  Authorize(context);
  Reply reply;
  // An exception out of a handler is left to end the process, which the
  // fuzzer reports: gRPC would answer UNKNOWN "Unexpected error in RPC
  // handling", which tells a user nothing.
  const grpc::Status status = (service.*method)(&context, &request, &reply);
  if (status.ok()) {
    // A reply is sent only with OK; the client must be able to read it.
    std::string bytes;
    Reply received;
    if (!reply.SerializeToString(&bytes) || !received.ParseFromString(bytes)) {
      Fail(Request::descriptor()->name() + " answered a reply a client cannot parse");
    }
  }
  if (on_call) on_call(action, status, &reply);
}

void Dispatch(Coordinator& c, Action action, std::string_view payload,
              const CoordinatorHarness::CallObserver& on_call) {
  CoordinatorService& s = c.service;
  switch (action) {
    case Action::kSubmitSweep:
      return Invoke(s, &CoordinatorService::SubmitSweep, action, payload, on_call);
    case Action::kGetSweep:
      return Invoke(s, &CoordinatorService::GetSweep, action, payload, on_call);
    case Action::kControlSweep:
      return Invoke(s, &CoordinatorService::ControlSweep, action, payload, on_call);
    case Action::kDeleteSweep:
      return Invoke(s, &CoordinatorService::DeleteSweep, action, payload, on_call);
    case Action::kRegisterAgent:
      return Invoke(s, &CoordinatorService::RegisterAgent, action, payload, on_call);
    case Action::kLeaseRun:
      return Invoke(s, &CoordinatorService::LeaseRun, action, payload, on_call);
    case Action::kFetchBlob:
      return Invoke(s, &CoordinatorService::FetchBlob, action, payload, on_call);
    case Action::kHeartbeat:
      return Invoke(s, &CoordinatorService::Heartbeat, action, payload, on_call);
    case Action::kReportMetrics:
      return Invoke(s, &CoordinatorService::ReportMetrics, action, payload, on_call);
    case Action::kUploadSnapshot:
      return Invoke(s, &CoordinatorService::UploadSnapshot, action, payload, on_call);
    case Action::kCompleteRun:
      return Invoke(s, &CoordinatorService::CompleteRun, action, payload, on_call);
    case Action::kReleaseRun:
      return Invoke(s, &CoordinatorService::ReleaseRun, action, payload, on_call);
    case Action::kListAgents:
      return Invoke(s, &CoordinatorService::ListAgents, action, payload, on_call);
    case Action::kReleaseAgent:
      return Invoke(s, &CoordinatorService::ReleaseAgent, action, payload, on_call);
    case Action::kGetRun:
      return Invoke(s, &CoordinatorService::GetRun, action, payload, on_call);
    case Action::kFetchArtifact:
      return Invoke(s, &CoordinatorService::FetchArtifact, action, payload, on_call);
    case Action::kAdvanceClock: {
      uint32_t ms = 0;
      for (size_t i = 0; i < payload.size() && i < 4; ++i) ms |= uint32_t{static_cast<uint8_t>(payload[i])} << (8 * i);
      c.clock.Advance(ms);
      if (on_call) on_call(action, grpc::Status::OK, nullptr);
      return;
    }
  }
}

// The files of the harness's directory. An empty store is a copy of a
// template migrated once: ten times faster than migrating a new one (or an
// in-memory one) for every input.
struct WorkFiles {
  explicit WorkFiles(const std::string& dir)
      : empty_store(dir + "/empty.db"), store(dir + "/coordinator.db"), artifacts(dir + "/artifacts") {}
  std::string empty_store, store, artifacts;
};

// Removes what the previous input left: the store (with SQLite's WAL files)
// and the artifacts.
void Reset(const WorkFiles& files) {
  std::error_code ec;
  for (const std::string& path : {files.store, files.store + "-wal", files.store + "-shm", files.artifacts}) {
    std::filesystem::remove_all(path, ec);
    if (ec) Fail("cannot remove " + path + ": " + ec.message());
  }
  std::filesystem::copy_file(files.empty_store, files.store, ec);
  if (ec) Fail("cannot copy " + files.empty_store + ": " + ec.message());
  std::filesystem::create_directory(files.artifacts, ec);
  if (ec) Fail("cannot make " + files.artifacts + ": " + ec.message());
}

}  // namespace

std::string ActionName(Action action) {
  if (action == Action::kAdvanceClock) return "AdvanceClock";
  return Service().method(static_cast<int>(action))->name();
}

std::string EncodeCall(Action action, std::string_view payload) {
  if (payload.size() > 0xffff) payload = payload.substr(0, 0xffff);
  std::string call;
  call += static_cast<char>(action);
  call += static_cast<char>(payload.size() & 0xff);
  call += static_cast<char>(payload.size() >> 8);
  call.append(payload);
  return call;
}

std::string EncodeCall(Action action, const google::protobuf::Message& request) {
  return EncodeCall(action, request.SerializeAsString());
}

std::string EncodeAdvanceClock(uint32_t ms) {
  std::string bytes;
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((ms >> (8 * i)) & 0xff);
  return EncodeCall(Action::kAdvanceClock, bytes);
}

std::vector<Call> DecodeCalls(std::string_view input) {
  std::vector<Call> calls;
  while (!input.empty()) {
    const auto action = static_cast<Action>(static_cast<uint8_t>(input[0]) % kActionCount);
    size_t size = 0;
    if (input.size() > 1) size = static_cast<uint8_t>(input[1]);
    if (input.size() > 2) size |= size_t{static_cast<uint8_t>(input[2])} << 8;
    input.remove_prefix(std::min<size_t>(input.size(), 3));
    const std::string_view payload = input.substr(0, size);
    input.remove_prefix(payload.size());
    calls.push_back(Call{action, std::string(payload)});
  }
  return calls;
}

CoordinatorHarness::CoordinatorHarness(std::string work_dir) : work_dir_(std::move(work_dir)) {
  if (Service().method_count() != kActionCount - 1) {
    Fail("the Coordinator service has " + std::to_string(Service().method_count()) +
         " methods; fuzz::Action names " + std::to_string(kActionCount - 1) + ": add the new ones");
  }
  // Migrated, then closed, so that a copy of the file is a whole database.
  OpenStore(WorkFiles(work_dir_).empty_store);
}

void CoordinatorHarness::Run(std::string_view input, const CallObserver& on_call) {
  const WorkFiles files(work_dir_);
  Reset(files);
  Coordinator coordinator(files.store, files.artifacts);
  std::vector<Call> calls = DecodeCalls(input);
  if (calls.size() > static_cast<size_t>(kMaxCalls)) calls.resize(kMaxCalls);
  for (const Call& call : calls) Dispatch(coordinator, call.action, call.payload, on_call);
}

}  // namespace stylesweep::fuzz
