#include "agent/engine/losses.h"

#include <torch/autograd.h>

namespace stylesweep {
namespace {

// The positions x channels matrix of a 1 x C x H x W activation: a view when
// the activation is channels-last, as the network returns it.
torch::Tensor PositionsByChannels(const torch::Tensor& features) {
  return features.permute({0, 2, 3, 1}).reshape({features.size(2) * features.size(3), features.size(1)});
}

class GramMse : public torch::autograd::Function<GramMse> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& features,
                               const torch::Tensor& target) {
    const torch::Tensor f = PositionsByChannels(features);
    const double positions = static_cast<double>(f.size(0));
    torch::Tensor difference = torch::mm(f.t(), f).div_(positions).sub_(target);
    torch::Tensor loss = difference.square().mean();
    ctx->save_for_backward({features, difference});
    return loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& features = saved[0];
    const torch::Tensor& difference = saved[1];
    const int64_t channels = features.size(1), height = features.size(2), width = features.size(3);
    const double scale = 2.0 / (static_cast<double>(channels) * channels * height * width);
    // dL/dF = F·(dL/dG + dL/dGᵀ)/P with dL/dG = 2(G − T)/C². G − T is
    // symmetric when T is a Gram matrix; symmetrising costs C² additions
    // and keeps the gradient exact for any target.
    const torch::Tensor g = (difference + difference.t()) * (grad_outputs[0] * scale);
    const torch::Tensor grad = torch::mm(PositionsByChannels(features), g);
    // Back to 1 x C x H x W, with channels-last strides like the activation.
    return {grad.view({1, height, width, channels}).permute({0, 3, 1, 2}), torch::Tensor()};
  }
};

}  // namespace

std::vector<double> StyleBlendWeights(const RunParams& params) {
  const size_t n = params.style.size();
  double sum = 0;
  for (double w : params.style_blend_weights) sum += w;
  std::vector<double> weights(n, 1.0 / static_cast<double>(n));
  if (params.style_blend_weights.size() == n && sum > 0) {
    for (size_t k = 0; k < n; ++k) weights[k] = params.style_blend_weights[k] / sum;
  }
  return weights;
}

torch::Tensor TotalVariation(const torch::Tensor& image) {
  const torch::Tensor dy = image.slice(2, 1) - image.slice(2, 0, -1);
  const torch::Tensor dx = image.slice(3, 1) - image.slice(3, 0, -1);
  return dy.abs().sum() + dx.abs().sum();
}

torch::Tensor Gram(const torch::Tensor& features) {
  const torch::Tensor f = PositionsByChannels(features);
  return torch::mm(f.t(), f) / static_cast<double>(f.size(0));
}

torch::Tensor GramMseLoss(const torch::Tensor& features, const torch::Tensor& target) {
  return GramMse::apply(features, target);
}

}  // namespace stylesweep
