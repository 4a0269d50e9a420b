#include "agent/engine/vgg19.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <string>
#include <utility>

namespace stylesweep {

Vgg19FeaturesImpl::Vgg19FeaturesImpl(int num_convs) {
  TORCH_CHECK(num_convs >= 1 && num_convs <= 16, "VGG19 has 1 to 16 convolutions, not ", num_convs);
  int in_channels = 3;
  for (int i = 0; i < num_convs; ++i) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(in_channels, kVgg19ConvChannels[i], 3).padding(1));
    // Named by features index, so parameters read "0.weight" like torchvision's.
    convs_.push_back(register_module(std::to_string(kVgg19ConvIndices[i]), conv));
    in_channels = kVgg19ConvChannels[i];
  }
  for (torch::Tensor& p : parameters()) p.set_requires_grad(false);
  // oneDNN runs these convolutions faster on channels-last (NHWC) tensors
  // (about 6% a step here), and LibTorch picks that layout when the input or
  // the weight has it. Storing the weights so spares converting them on every
  // call; copy_ into them keeps the layout.
  torch::NoGradGuard no_grad;
  for (torch::nn::Conv2d& conv : convs_) conv->weight.set_data(conv->weight.contiguous(at::MemoryFormat::ChannelsLast));
}

std::vector<torch::Tensor> Vgg19FeaturesImpl::forward(torch::Tensor x, const std::vector<int>& taps) {
  return forward(std::move(x), taps, Mode());
}

void Vgg19FeaturesImpl::CastWeights(Mode& mode) const {
  torch::NoGradGuard no_grad;
  mode.bf16_weights.clear();
  mode.bf16_biases.clear();
  for (const torch::nn::Conv2d& conv : convs_) {
    mode.bf16_weights.push_back(conv->weight.to(torch::kBFloat16).contiguous(at::MemoryFormat::ChannelsLast));
    mode.bf16_biases.push_back(conv->bias.to(torch::kBFloat16));
  }
}

std::vector<torch::Tensor> Vgg19FeaturesImpl::forward(torch::Tensor x, const std::vector<int>& taps,
                                                      const Mode& mode) {
  TORCH_CHECK(!taps.empty(), "no taps requested");
  const int deepest = *std::max_element(taps.begin(), taps.end());
  TORCH_CHECK(deepest <= max_tap(), "tap ", deepest, " is past the last convolution loaded (", max_tap(), ")");
  std::vector<torch::Tensor> out(taps.size());
  const bool bf16 = !mode.bf16_weights.empty();
  TORCH_CHECK(!bf16 || mode.bf16_weights.size() == convs_.size(), "bfloat16 weights do not match the network");
  if (bf16) x = x.to(torch::kBFloat16);
  x = x.contiguous(at::MemoryFormat::ChannelsLast);
  for (size_t i = 0; i < convs_.size() && kVgg19ConvIndices[i] < deepest; ++i) {
    if (i > 0 && kVgg19ConvIndices[i] != kVgg19ConvIndices[i - 1] + 2) {
      x = mode.average_pooling ? torch::avg_pool2d(x, 2) : torch::max_pool2d(x, 2);
    }
    x = bf16 ? torch::conv2d(x, mode.bf16_weights[i], mode.bf16_biases[i], 1, 1) : convs_[i]->forward(x);
    // In place: the convolution's backward needs its input, not its output,
    // so the ReLU can reuse the output's memory (one activation less a layer).
    x = torch::relu_(x);
    const int relu_index = kVgg19ConvIndices[i] + 1;
    for (size_t t = 0; t < taps.size(); ++t) {
      if (taps[t] == relu_index) out[t] = bf16 ? x.to(torch::kFloat) : x;
    }
  }
  for (size_t t = 0; t < taps.size(); ++t) {
    TORCH_CHECK(out[t].defined(), "features index ", taps[t], " is not the output of a ReLU");
  }
  return out;
}

}  // namespace stylesweep
