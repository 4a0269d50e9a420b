#ifndef STYLESWEEP_AGENT_ENGINE_LOSSES_H_
#define STYLESWEEP_AGENT_ENGINE_LOSSES_H_

// The engine's loss terms. Internal to the engine (includes torch).

#include <torch/types.h>

#include <vector>

#include "common/run_params.h"

namespace stylesweep {

// The weight of each of params.style's images in the blended style target
// (neural-style's -style_blend_weights): style_blend_weights scaled to sum
// to 1, equal weights when it is empty or sums to 0.
std::vector<double> StyleBlendWeights(const RunParams& params);

// Σ|x[i+1,j] − x[i,j]| + Σ|x[i,j+1] − x[i,j]| over an N x C x H x W image
// (tf.image.total_variation), a scalar.
torch::Tensor TotalVariation(const torch::Tensor& image);

// G = F·Fᵀ / (H·W) for a 1 x C x H x W activation F.
torch::Tensor Gram(const torch::Tensor& features);

// mean((Gram(features) − target)²), differentiable in `features`, in one
// fused step. Autograd through Gram and mse_loss would spend two C x C x P
// matrix products on the gradient (one per operand of F·Fᵀ) plus the
// element-wise passes between them; the gradient is 2/(C²·P)·F·(D + Dᵀ)
// with D = G − T, one product. The forward keeps D for it (C² floats).
torch::Tensor GramMseLoss(const torch::Tensor& features, const torch::Tensor& target);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_LOSSES_H_
