#ifndef STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_
#define STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_

// The optimisation behind the torch engine's Run: Gatys et al. as the
// TensorFlow tutorial implements it (losses, TF-form Adam, clipping), and the
// evaluation of its images. Engine-internal (LibTorch types); split from
// torch_engine.cc so tests can compare the float result with an independent
// computation.

#include <torch/types.h>

#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/engine/engine.h"
#include "agent/engine/vgg19.h"
#include "common/run_params.h"

namespace stylesweep {

// The style targets (blended Gram matrices, one per style layer) of recent
// runs, so that the runs of one sweep that share style images, size, layers,
// preprocessing, pooling and precision compute them once. Least recently used
// entries go first. Keys name the files (path, size, modification time), not
// the network, so one cache serves one network (TorchEngine holds one each).
// Thread-safe.
class StyleTargetCache {
 public:
  explicit StyleTargetCache(size_t capacity = 8) : capacity_(capacity) {}

  std::optional<std::vector<torch::Tensor>> Find(const std::string& key);
  void Insert(const std::string& key, std::vector<torch::Tensor> grams);
  void Clear();
  size_t hits() const;
  size_t misses() const;

 private:
  using Entry = std::pair<std::string, std::vector<torch::Tensor>>;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // most recently used first
  std::map<std::string, std::list<Entry>::iterator> index_;
  size_t hits_ = 0, misses_ = 0;
};

struct StyleTransferOptions {
  torch::Device device = torch::kCPU;  // where `net` lives and the work runs
  // For networks without trained weights: divide each layer's style term by
  // mean(G_target²) and each content term by mean(F_target²). A random
  // network's activations differ in scale by orders of magnitude from layer to
  // layer, so the tutorial's raw weights would let one layer swamp the rest.
  bool normalise_by_targets = false;
  StyleTargetCache* style_cache = nullptr;  // not owned; null: no caching
  // Names the network's weights in style_cache keys, so that runs with
  // different weights never share targets.
  std::string network_id;
};

// Optimises the image for `params` (validated, so layer names are canonical;
// every layer within `net`'s depth) and reports through `callbacks` with the
// contract engine.h gives. On OK, `final_image` (if not null) receives the
// image after the last update (clipped, colours preserved if asked):
// 1 x 3 x H x W, RGB in [0, 1], on the device.
//
// Adam clips the image to [0, 1] after every update (the tutorial's
// algorithm); L-BFGS optimises it unclipped (as neural-style does), so its
// losses are those of the unclipped image. Everything handed over (the
// snapshots, the stopped or diverged run's image, `final_image`) is
// clipped, and so is what the evaluator measures (StepMetrics::eval, by an
// Evaluator built for the run: evaluator.h).
//
// With multires stages, steps are numbered continuously: stage k's updates
// are steps S+1 .. S+n_k (S: the steps of the stages before it), and row
// S+n_k (and its snapshot, if due) is the image at the end of stage k, at
// stage k's size. So there are exactly params.steps + 1 rows, as without
// stages; the image is then upsampled (bilinear), clipped to [0, 1], and the
// optimiser restarts.
// Images that cannot be loaded fail with the loader's status, prefixed by
// "content image: " or "style image: ".
absl::Status RunStyleTransfer(Vgg19Features& net, const RunParams& params, const StyleTransferOptions& options,
                              const EngineCallbacks& callbacks, torch::Tensor* final_image = nullptr);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_STYLE_TRANSFER_H_
