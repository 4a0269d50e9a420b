#include "coordinator/rpc/metrics_interceptor.h"

#include <chrono>
#include <cstring>
#include <string>

#include "stylesweep/v1/coordinator.pb.h"

namespace stylesweep {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr char kReportMetrics[] = "/stylesweep.v1.Coordinator/ReportMetrics";
constexpr char kUploadSnapshot[] = "/stylesweep.v1.Coordinator/UploadSnapshot";

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

// One per call; gRPC deletes it when the call ends.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(CoordinatorMetrics& metrics, const char* method)
      : metrics_(metrics), method_(method != nullptr ? method : ""), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // The deserialised request: its type follows from the method name.
      if (method_ == kReportMetrics) {
        if (const auto* request = static_cast<const v1::ReportMetricsRequest*>(methods->GetRecvMessage())) {
          rows_ = request->losses_size();
          steps_ = 0;
          for (const v1::StepLoss& loss : request->losses()) steps_ += loss.step() > 0 ? 1 : 0;
        }
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_.RecordRpc(method_, CodeName(status.error_code()), seconds);
      if (status.ok() && method_ == kReportMetrics) metrics_.RecordMetricRows(rows_, steps_);
      if (status.ok() && method_ == kUploadSnapshot) metrics_.RecordSnapshot();
    }
    methods->Proceed();
  }

 private:
  CoordinatorMetrics& metrics_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
  int rows_ = 0;
  int steps_ = 0;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(metrics_, info->method());
}

}  // namespace stylesweep
