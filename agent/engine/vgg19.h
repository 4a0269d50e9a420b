#ifndef STYLESWEEP_AGENT_ENGINE_VGG19_H_
#define STYLESWEEP_AGENT_ENGINE_VGG19_H_

// VGG19's convolutional trunk, torchvision's `vgg19().features`, as used by
// the engine. Engine-internal: this header pulls in LibTorch, so only files in
// agent/engine/ and its tests include it.

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <vector>

namespace stylesweep {

// Features indices of the 16 convolutions (block1_conv1 .. block5_conv4); the
// ReLU of conv `i` is module i + 1, and a 2x2 max-pool sits wherever the next
// conv index is not the previous one + 2 (indices 4, 9, 18, 27).
inline constexpr std::array<int, 16> kVgg19ConvIndices = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
// Output channels of each convolution; the input channels are the previous
// one's (3 for the first).
inline constexpr std::array<int, 16> kVgg19ConvChannels = {64,  64,  128, 128, 256, 256, 256, 256,
                                                           512, 512, 512, 512, 512, 512, 512, 512};

// The first `num_convs` convolutions of VGG19 (3x3, padding 1) with their
// ReLUs and max-pools. Parameters never require gradients: the network is a
// fixed feature extractor. Holding fewer than 16 convolutions lets a weights
// file that stops early (say at block5_conv2) serve every layer it covers.
// Weights are stored in channels-last memory format (see the .cc); fill them
// with copy_, which keeps it.
//
// Thread-compatible: forward only reads the module, so concurrent forwards
// are safe as long as nobody changes the parameters meanwhile.
class Vgg19FeaturesImpl : public torch::nn::Module {
 public:
  explicit Vgg19FeaturesImpl(int num_convs = 16);

  int num_convs() const { return static_cast<int>(convs_.size()); }
  // Deepest features index whose output forward can return (the last ReLU).
  int max_tap() const { return kVgg19ConvIndices[convs_.size() - 1] + 1; }
  // Convolution `ordinal` (0 for block1_conv1), for loading its parameters.
  torch::nn::Conv2d& conv(int ordinal) { return convs_[ordinal]; }

  // Runs `x` (N x 3 x H x W, already preprocessed for the weights) through
  // the network and returns the outputs of the features modules at `taps`
  // (ReLU indices, as common/layers.h's LayerFeatureIndex gives; repeats
  // allowed), in the order asked, in channels-last memory format. Computes
  // nothing past the deepest tap. Every tap must be a ReLU index <= max_tap().
  std::vector<torch::Tensor> forward(torch::Tensor x, const std::vector<int>& taps);

  // How one run computes the features (RunParams' pooling and precision).
  struct Mode {
    bool average_pooling = false;  // 2x2 average pools instead of max pools
    // Non-empty: the convolutions' weights and biases in bfloat16 (from
    // CastWeights), which the convolutions then run in; the input is cast to
    // bfloat16 and every returned tap back to float32, so Gram matrices,
    // losses and gradients to the image stay float32.
    std::vector<torch::Tensor> bf16_weights, bf16_biases;
  };
  // Fills `mode`'s bfloat16 copies of the weights (channels-last).
  void CastWeights(Mode& mode) const;
  std::vector<torch::Tensor> forward(torch::Tensor x, const std::vector<int>& taps, const Mode& mode);

 private:
  std::vector<torch::nn::Conv2d> convs_;
};
TORCH_MODULE(Vgg19Features);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_VGG19_H_
