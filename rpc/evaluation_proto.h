#ifndef STYLESWEEP_RPC_EVALUATION_PROTO_H_
#define STYLESWEEP_RPC_EVALUATION_PROTO_H_

// An Evaluation (common/evaluation.h) and its protocol message, both ways:
// agents send it with their losses, the coordinator stores and returns it.

#include "common/evaluation.h"
#include "stylesweep/v1/coordinator.pb.h"

namespace stylesweep {

void ToProto(const Evaluation& e, v1::Evaluation* out);
Evaluation FromProto(const v1::Evaluation& e);

}  // namespace stylesweep

#endif  // STYLESWEEP_RPC_EVALUATION_PROTO_H_
