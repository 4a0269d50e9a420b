#ifndef STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_
#define STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_

// The optimisation behind the torch engine's Run: Gatys et al. as the
// TensorFlow tutorial implements it (losses, TF-form Adam, clipping). Engine-
// internal (LibTorch types); split from torch_engine.cc so tests can compare
// the float result with an independent computation.

#include <torch/types.h>

#include "absl/status/status.h"
#include "agent/engine/engine.h"
#include "agent/engine/vgg19.h"
#include "common/run_params.h"

namespace stylesweep {

struct StyleTransferOptions {
  torch::Device device = torch::kCPU;  // where `net` lives and the work runs
  // For networks without trained weights: divide each layer's style term by
  // mean(G_target²) and each content term by mean(F_target²). A random
  // network's activations differ in scale by orders of magnitude from layer to
  // layer, so the tutorial's raw weights would let one layer swamp the rest.
  bool normalise_by_targets = false;
};

// Optimises the image for `params` (validated, so layer names are canonical;
// every layer within `net`'s depth) and reports through `callbacks` with the
// contract engine.h gives. On OK, `final_image` (if not null) receives the
// image after the last update: 1 x 3 x H x W, RGB in [0, 1], on the device.
// Images that cannot be loaded fail with the loader's status, prefixed by
// "content image: " or "style image: ".
absl::Status RunStyleTransfer(Vgg19Features& net, const RunParams& params, const StyleTransferOptions& options,
                              const EngineCallbacks& callbacks, torch::Tensor* final_image = nullptr);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_
