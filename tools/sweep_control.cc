#include "tools/sweep_control.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/terminal_text.h"

namespace stylesweep {

absl::StatusOr<v1::DeleteSweepResponse> DeleteSweep(v1::Coordinator::Stub& stub, const ClientSecurity& security,
                                                    const std::string& sweep, bool cancel_first, int64_t timeout_ms) {
  v1::DeleteSweepRequest request;
  request.set_sweep(sweep);
  request.set_cancel_first(cancel_first);
  grpc::ClientContext context;
  PrepareContext(context, security, timeout_ms);
  v1::DeleteSweepResponse response;
  // Never retried: after a timeout the sweep may be gone, and a retry would
  // say NotFound for a deletion that worked.
  if (grpc::Status status = stub.DeleteSweep(&context, request, &response); !status.ok()) {
    return FromGrpcStatus(status);
  }
  return response;
}

std::string FormatCount(int64_t n) {
  const std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string FormatSize(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes);
  const char* unit = "B";
  for (const char* next : {"KiB", "MiB", "GiB", "TiB"}) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return absl::StrFormat("%.1f %s", value, unit);
}

std::string DescribeDeletion(const v1::DeleteSweepResponse& deleted) {
  auto plural = [](int64_t n, const char* one, const char* many) {
    return absl::StrCat(FormatCount(n), " ", n == 1 ? one : many);
  };
  return absl::StrCat("sweep ", deleted.sweep_id(), " '", ForTerminal(deleted.name()), "' deleted: ",
                      plural(deleted.runs(), "run", "runs"), ", ", plural(deleted.metric_rows(), "loss row", "loss rows"),
                      ", ", plural(deleted.blobs_removed(), "image", "images"), ", ", FormatSize(deleted.bytes_freed()),
                      " freed");
}

}  // namespace stylesweep
