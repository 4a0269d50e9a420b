#ifndef STYLESWEEP_COORDINATOR_RPC_CONVERT_H_
#define STYLESWEEP_COORDINATOR_RPC_CONVERT_H_

// Proto <-> domain conversion, in one place.

#include <map>
#include <string>
#include <vector>

#include "coordinator/scheduler/scheduler.h"
#include "coordinator/store/store.h"
#include "rpc/evaluation_proto.h"
#include "stylesweep/v1/coordinator.pb.h"

namespace stylesweep {

void ToProto(const RunRecord& run, v1::RunSummary* out);
void ToProto(const AgentView& view, v1::AgentSummary* out);
// The record part (the state travels as a name: AgentSummary.state).
AgentRecord FromProto(const v1::AgentSummary& agent);
// The sweep without its runs: their totals (Store::TotalSweeps).
void ToProto(const SweepRecord& sweep, const SweepTotals& totals, v1::SweepSummary* out);
std::vector<MetricRow> FromProto(const google::protobuf::RepeatedPtrField<v1::StepLoss>& losses);
void ToProto(const MetricRow& row, v1::StepLoss* out);
void ToProto(const SnapshotRecord& snapshot, v1::SnapshotSummary* out);

// The inverse direction, for clients that read a coordinator's answer.
RunRecord FromProto(const v1::RunSummary& run, int64_t sweep_id);
SweepRecord FromProto(const v1::SweepSummary& sweep);
SnapshotRecord FromProto(const v1::SnapshotSummary& snapshot, int64_t run_id);

}  // namespace stylesweep

#endif  // STYLESWEEP_COORDINATOR_RPC_CONVERT_H_
