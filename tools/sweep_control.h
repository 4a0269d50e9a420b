#ifndef STYLESWEEP_TOOLS_SWEEP_CONTROL_H_
#define STYLESWEEP_TOOLS_SWEEP_CONTROL_H_

// `stylesweep delete`: removing a sweep through the coordinator, the only
// writer of its database and artifacts directory.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "rpc/transport.h"
#include "stylesweep/v1/coordinator.grpc.pb.h"

namespace stylesweep {

// Deletes a sweep (by id or name) with its runs, losses, snapshots, its
// artifacts directory and the images no other sweep uses. While runs are
// QUEUED or RUNNING the coordinator refuses (FailedPrecondition, its message
// saying to cancel first) unless `cancel_first`, which cancels them first.
// NotFound for an unknown sweep; Unavailable when the coordinator cannot be
// reached. Not idempotent: a second call is NotFound.
absl::StatusOr<v1::DeleteSweepResponse> DeleteSweep(v1::Coordinator::Stub& stub, const ClientSecurity& security,
                                                    const std::string& sweep, bool cancel_first,
                                                    int64_t timeout_ms = 60000);

// "sweep 3 'tiny' deleted: 12 runs, 3,600 loss rows, 2 images, 4.1 MiB freed".
std::string DescribeDeletion(const v1::DeleteSweepResponse& deleted);

// "3,600".
std::string FormatCount(int64_t n);
// "812 B", "4.1 KiB", "4.1 MiB", "1.2 GiB".
std::string FormatSize(int64_t bytes);

}  // namespace stylesweep

#endif  // STYLESWEEP_TOOLS_SWEEP_CONTROL_H_
