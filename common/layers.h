#ifndef STYLESWEEP_COMMON_LAYERS_H_
#define STYLESWEEP_COMMON_LAYERS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace stylesweep {

// VGG19 layer names. The canonical form is Keras' ("block4_conv2"); users may
// also write the Caffe/neural-style aliases "conv4_2" and "relu4_2". Every
// name denotes the activation *after* the ReLU of that convolution.

// Returns the canonical name of `name`, or InvalidArgument listing what is
// accepted (with a close match when there is one).
absl::StatusOr<std::string> CanonicalLayerName(std::string_view name);

// Index in torchvision's `vgg19().features` of the ReLU module whose output is
// the canonical layer `canonical` (conv index + 1). -1 if unknown.
int LayerFeatureIndex(std::string_view canonical);

// Position of `canonical` among the 16 convolutions (0 for block1_conv1,
// 15 for block5_conv4). -1 if unknown.
int LayerConvOrdinal(std::string_view canonical);

// All 16 canonical names in network order.
const std::vector<std::string>& AllLayerNames();

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_LAYERS_H_
