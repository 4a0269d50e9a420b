#ifndef STYLESWEEP_AGENT_ENGINE_IMAGE_TENSOR_H_
#define STYLESWEEP_AGENT_ENGINE_IMAGE_TENSOR_H_

// Images as the engine's tensors: loading a file into a 1 x 3 x H x W tensor,
// and turning RGB in [0, 1] into what the network's weights expect. Shared by
// the optimisation (style_transfer.cc) and the evaluator. Engine-internal
// (LibTorch types). Thread-safe: nothing here holds mutable state.

#include <torch/types.h>

#include <string>

#include "absl/status/statusor.h"

namespace stylesweep {

// The image file at `path` scaled to a long side of `long_side` pixels (see
// image_io.h's ResizeLongSide), as a 1 x 3 x H x W float tensor of RGB in
// [0, 1] on `device`. Fails with LoadImage's status, its message prefixed by
// "<role> image: " ("content image: ...").
absl::StatusOr<torch::Tensor> LoadImageTensor(const std::string& path, int long_side, const char* role,
                                              const torch::Device& device);

// RGB in [0, 1] → the network's input, for RunParams::preprocess:
// "torchvision" normalises by ImageNet's mean and std, "caffe" gives BGR in
// 0..255 minus the Caffe mean pixel. Differentiable, so it sits inside the
// loss graph and the optimised image stays RGB in [0, 1].
class Preprocessor {
 public:
  Preprocessor(const std::string& kind, const torch::Device& device);

  torch::Tensor operator()(const torch::Tensor& rgb) const;

 private:
  bool caffe_;
  torch::Tensor mean_, std_;
};

// Resizes a 1 x 3 x H x W image to `height` x `width`: bilinear, antialiased
// when shrinking, align_corners false. Returns `image` itself when it has
// that size already.
torch::Tensor ResizeImageTensor(const torch::Tensor& image, int64_t height, int64_t width);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_IMAGE_TENSOR_H_
