#ifndef STYLESWEEP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_
#define STYLESWEEP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include "coordinator/http/coordinator_metrics.h"

namespace stylesweep {

// Feeds CoordinatorMetrics from every call the gRPC server serves (health
// and reflection included): each call's duration by method and status code,
// and, from successful ReportMetrics and UploadSnapshot calls, the loss rows,
// steps and snapshots delivered. Seeing the calls from outside keeps the
// service and the scheduler free of monitoring. `metrics` must outlive the
// server. Thread-safe.
class MetricsInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(CoordinatorMetrics& metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  CoordinatorMetrics& metrics_;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_
