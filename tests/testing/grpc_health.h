#ifndef STYLESWEEP_TESTS_TESTING_GRPC_HEALTH_H_
#define STYLESWEEP_TESTS_TESTING_GRPC_HEALTH_H_

// A grpc.health.v1.Health/Check client for tests, as grpc_health_probe or
// grpcurl would call it. Debian ships no generated health stubs, so the
// two tiny messages are encoded by hand:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1,
//                                                      NOT_SERVING 2, SERVICE_UNKNOWN 3
// Header-only: tests that include it link gRPC::grpc++.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

namespace stylesweep::testing {

// "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNKNOWN"; or, when the
// call fails, "error: " and its code and message. `service` "" asks about the
// whole server.
inline std::string CheckGrpcHealth(const std::string& target, const std::string& service,
                                   const std::string& token = "") {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  std::string request_bytes;
  if (!service.empty()) {
    request_bytes = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;  // names < 128 bytes
  }
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return "error: " + std::to_string(status.error_code()) + " " + status.error_message();
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return "error: unreadable response";
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.empty()) return "UNKNOWN";  // the default value is not sent
  if (bytes.size() != 2 || bytes[0] != '\x08') return "error: unexpected response";
  switch (bytes[1]) {
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
  }
}

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_GRPC_HEALTH_H_
