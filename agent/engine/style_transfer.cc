#include "agent/engine/style_transfer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/optim/lbfgs.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/cpu_memory.h"
#include "agent/engine/evaluator.h"
#include "agent/engine/image_io.h"
#include "agent/engine/image_tensor.h"
#include "agent/engine/losses.h"
#include "common/files.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

// The tutorial's Adam settings; RunParams carries the learning rate and where
// ε goes.
constexpr double kBeta1 = 0.99;
constexpr double kBeta2 = 0.999;
constexpr double kEpsilon = 0.1;

// The weighted loss terms of one image (scalars on the device).
struct Losses {
  torch::Tensor content, style, tv, total;
  std::vector<torch::Tensor> style_per_layer;
};

// How features are computed for one run, and the taps used.
struct FeatureSetup {
  mutable Vgg19Features net;  // forward is not const, though it only reads
  Vgg19FeaturesImpl::Mode mode;
  Preprocessor preprocess;
  std::vector<int> taps;  // style layers first, then content layers
  size_t n_style = 0;

  std::vector<torch::Tensor> operator()(const torch::Tensor& image) const {
    return net->forward(preprocess(image), taps, mode);
  }
};

// Several style images blend as neural-style does: the target Gram matrix of
// each layer is the weighted mean of the images' Gram matrices.
std::vector<torch::Tensor> BlendedStyleGrams(const FeatureSetup& features, const RunParams& params,
                                             const std::vector<torch::Tensor>& style_images) {
  torch::NoGradGuard no_grad;
  const std::vector<double> blend = StyleBlendWeights(params);
  std::vector<torch::Tensor> grams(features.n_style);
  for (size_t k = 0; k < style_images.size(); ++k) {
    std::vector<torch::Tensor> f = features(style_images[k]);
    for (size_t i = 0; i < features.n_style; ++i) {
      torch::Tensor weighted = Gram(f[i]) * blend[k];
      grams[i] = grams[i].defined() ? grams[i] + weighted : weighted;
    }
  }
  return grams;
}

// The loss function of one run at one size: the targets are computed once, here.
class StyleLoss {
 public:
  StyleLoss(const FeatureSetup& features, const RunParams& params, const StyleTransferOptions& options,
            const torch::Tensor& content_image, std::vector<torch::Tensor> style_grams)
      : features_(features), tv_weight_(params.tv_weight) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> content_features = features_(content_image);
    const size_t n_style = features_.n_style;
    for (size_t i = 0; i < features_.taps.size(); ++i) {
      const bool is_style = i < n_style;
      torch::Tensor target = is_style ? style_grams[i] : content_features[i];
      double coefficient = is_style ? params.style_weight / static_cast<double>(params.style_layers.size())
                                    : params.content_weight / static_cast<double>(params.content_layers.size());
      if (is_style && !params.style_layer_weights.empty()) coefficient *= params.style_layer_weights[i];
      if (options.normalise_by_targets) {
        const double scale = target.square().mean().item<double>();
        if (scale > 0) coefficient /= scale;  // an all-zero target (a dead layer) stays unnormalised
      }
      targets_.push_back(std::move(target));
      coefficients_.push_back(coefficient);
    }
  }

  Losses operator()(const torch::Tensor& image) const {
    std::vector<torch::Tensor> features = features_(image);
    const size_t n_style = features_.n_style;
    Losses losses;
    torch::Tensor content_sum, style_sum;
    for (size_t i = 0; i < features.size(); ++i) {
      const bool is_style = i < n_style;
      torch::Tensor term = (is_style ? GramMseLoss(features[i], targets_[i]) : torch::mse_loss(features[i], targets_[i])) *
                           coefficients_[i];
      if (is_style) losses.style_per_layer.push_back(term);
      torch::Tensor& sum = is_style ? style_sum : content_sum;
      sum = sum.defined() ? sum + term : term;
    }
    losses.style = style_sum;
    losses.content = content_sum;
    losses.tv = TotalVariation(image) * tv_weight_;
    losses.total = losses.style + losses.content + losses.tv;
    return losses;
  }

 private:
  const FeatureSetup& features_;
  double tv_weight_;
  std::vector<torch::Tensor> targets_;  // Gram matrices for style taps, activations for content taps
  std::vector<double> coefficients_;    // weight / layer count (× layer weight) (/ target scale)
};

// Adam in two forms. TensorFlow/Keras add ε to √v before the bias correction
// is folded into the step size,
//   x -= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε);
// torch::optim::Adam (and the paper) add it after the correction,
//   x -= lr/(1−β1ᵗ) · m / (√(v/(1−β2ᵗ)) + ε),
// which with the tutorial's large ε = 0.1 is a different optimiser.
class Adam {
 public:
  Adam(const torch::Tensor& like, double learning_rate, bool tf_epsilon)
      : learning_rate_(learning_rate), tf_epsilon_(tf_epsilon), m_(torch::zeros_like(like)), v_(torch::zeros_like(like)) {}

  // Updates `x` in place from its gradient, then clips it to [0, 1].
  void Step(torch::Tensor& x, const torch::Tensor& gradient) {
    torch::NoGradGuard no_grad;
    ++t_;
    m_.mul_(kBeta1).add_(gradient, 1 - kBeta1);
    v_.mul_(kBeta2).addcmul_(gradient, gradient, 1 - kBeta2);
    const double correction1 = 1 - std::pow(kBeta1, t_), correction2 = 1 - std::pow(kBeta2, t_);
    if (tf_epsilon_) {
      x.addcdiv_(m_, v_.sqrt().add_(kEpsilon), -learning_rate_ * std::sqrt(correction2) / correction1);
    } else {
      x.addcdiv_(m_, v_.div(correction2).sqrt_().add_(kEpsilon), -learning_rate_ / correction1);
    }
    x.clamp_(0, 1);
  }

 private:
  double learning_rate_;
  bool tf_epsilon_;
  torch::Tensor m_, v_;
  int64_t t_ = 0;
};

// One optimiser step of either kind. For L-BFGS one step is one iteration
// (a direction and a strong-Wolfe line search, several loss evaluations).
//
// Adam clips the image to [0, 1] after every update, as the tutorial does.
// L-BFGS optimises the image unclipped, as neural-style does: clipping
// between iterations would change the image behind the optimiser's back
// and spoil the curvature pairs it builds its directions from (it then
// stalls well above the loss Adam reaches). Its losses are those of the
// unclipped image; what is saved and evaluated is clipped (SavedImage).
class Optimiser {
 public:
  Optimiser(const RunParams& params, torch::Tensor& x) : x_(x) {
    if (params.optimizer == "lbfgs") {
      torch::optim::LBFGSOptions options(1.0);
      options.max_iter(1).history_size(100).line_search_fn("strong_wolfe").tolerance_grad(0).tolerance_change(0);
      lbfgs_.emplace(std::vector<torch::Tensor>{x}, options);
    } else {
      adam_.emplace(x, params.learning_rate, params.adam_epsilon_mode == "tf");
    }
  }

  bool needs_gradient() const { return adam_.has_value(); }

  // Adam: `losses` is the loss of the current image with its graph.
  // L-BFGS evaluates `loss` itself.
  void Step(Losses& losses, const StyleLoss& loss) {
    if (adam_) {
      const torch::Tensor gradient = torch::autograd::grad({losses.total}, {x_})[0];
      losses = Losses();  // frees the graph's activations before the update
      adam_->Step(x_, gradient);
      return;
    }
    losses = Losses();
    lbfgs_->step([this, &loss] {
      lbfgs_->zero_grad();
      torch::Tensor total = loss(x_).total;
      total.backward();
      return total.detach();
    });
  }

 private:
  torch::Tensor& x_;
  std::optional<Adam> adam_;
  std::optional<torch::optim::LBFGS> lbfgs_;
};

StepMetrics ToMetrics(int step, const Losses& losses, double seconds) {
  // One transfer to the host for all values (one sync on a GPU).
  std::vector<torch::Tensor> scalars = {losses.content, losses.style, losses.tv, losses.total};
  scalars.insert(scalars.end(), losses.style_per_layer.begin(), losses.style_per_layer.end());
  const torch::Tensor values = torch::stack(scalars).to(torch::kCPU, torch::kDouble);
  const double* v = values.data_ptr<double>();
  StepMetrics m;
  m.step = step;
  m.content = v[0];
  m.style = v[1];
  m.tv = v[2];
  m.total = v[3];
  m.style_per_layer.assign(v + 4, v + values.numel());
  m.step_seconds = seconds;
  return m;
}

absl::StatusOr<std::string> EncodeTensorPng(const torch::Tensor& x) {
  const torch::Tensor hwc = x.detach()[0].permute({1, 2, 0}).to(torch::kCPU).contiguous();
  Image image;
  image.height = static_cast<int>(hwc.size(0));
  image.width = static_cast<int>(hwc.size(1));
  image.pixels.assign(hwc.data_ptr<float>(), hwc.data_ptr<float>() + hwc.numel());
  return EncodePng(image);
}

// The first loss of `m` that is not finite, named as a user reads it
// ("style loss is inf"); empty when all are finite. The terms come before
// the total, which is their sum, so that the term at fault is named; a total
// that overflows while every term is finite is named as the total.
std::string NonFiniteLoss(const StepMetrics& m) {
  const std::pair<const char*, double> losses[] = {
      {"content", m.content}, {"style", m.style}, {"tv", m.tv}, {"total", m.total}};
  for (const auto& [name, value] : losses) {
    if (std::isfinite(value)) continue;
    return absl::StrCat(name, " loss is ", std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf");
  }
  return "";
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// neural-style's -original_colors: the luminance (Y of YIQ) of `image` with
// the chroma (I, Q) of `content`, clipped to [0, 1].
torch::Tensor PreserveColors(const torch::Tensor& image, const torch::Tensor& content) {
  torch::NoGradGuard no_grad;
  const auto options = image.options();
  const torch::Tensor to_yiq = torch::tensor({0.299f, 0.587f, 0.114f,        //
                                              0.596f, -0.274f, -0.322f,      //
                                              0.211f, -0.523f, 0.312f},
                                             options)
                                   .view({3, 3});
  const torch::Tensor to_rgb = torch::inverse(to_yiq);
  auto apply = [](const torch::Tensor& matrix, const torch::Tensor& x) {
    return torch::einsum("ij,njhw->nihw", {matrix, x});
  };
  const torch::Tensor y = apply(to_yiq, image.detach()).narrow(1, 0, 1);
  const torch::Tensor iq = apply(to_yiq, content).narrow(1, 1, 2);
  return apply(to_rgb, torch::cat({y, iq}, 1)).clamp(0, 1);
}

// The image a run hands over (snapshots, the image of a stopped or diverged
// run, the final image) and evaluates: clipped to [0, 1], with the content's
// colours when the run preserves them. L-BFGS optimises the image unclipped;
// Adam's is clipped after every update already, so clipping it again
// changes nothing.
torch::Tensor SavedImage(const torch::Tensor& x, const torch::Tensor& content, bool preserve_colors) {
  torch::NoGradGuard no_grad;
  return preserve_colors ? PreserveColors(x, content) : x.detach().clamp(0, 1);
}

// Each 2x2 pool halves the image, and a pool's input must be at least 2 px:
// an image whose short side is below 2^(pools before the deepest tap) cannot
// reach that tap.
absl::Status CheckReachesDeepestTap(const torch::Tensor& image, const std::vector<int>& taps, const char* role,
                                    const std::string& path) {
  const int deepest = *std::max_element(taps.begin(), taps.end());
  int64_t needed = 1;
  for (int pool : {4, 9, 18, 27}) {
    if (pool < deepest) needed *= 2;
  }
  const int64_t height = image.size(2), width = image.size(3);
  if (std::min(height, width) < needed) {
    return absl::InvalidArgumentError(absl::StrCat(role, " image '", path, "' is ", width, "x", height,
                                                   " px at this size; the layers used need its short side at least ",
                                                   needed, " px (raise image_size or style_scale)"));
  }
  return absl::OkStatus();
}

// What a run's style targets depend on, as a cache key; empty when a style
// file cannot be examined (the load reports that).
std::string StyleTargetKey(const RunParams& params, const StyleTransferOptions& options, int style_long_side) {
  std::string key = absl::StrCat(options.network_id, "|", options.device.str(), "|", style_long_side, "|",
                                 params.preprocess, "|", params.pooling, "|", params.precision);
  for (const std::string& layer : params.style_layers) absl::StrAppend(&key, "|", layer);
  for (double w : params.style_blend_weights) absl::StrAppend(&key, "|w", w);
  for (const std::string& path : params.style) {
    const std::string identity = FileIdentity(path);
    if (identity.empty()) return "";
    absl::StrAppend(&key, "|", identity);
  }
  return key;
}

}  // namespace

std::optional<std::vector<torch::Tensor>> StyleTargetCache::Find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  entries_.splice(entries_.begin(), entries_, it->second);
  return it->second->second;
}

void StyleTargetCache::Insert(const std::string& key, std::vector<torch::Tensor> grams) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.emplace_front(key, std::move(grams));
  index_[key] = entries_.begin();
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
}

void StyleTargetCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
  index_.clear();
}

size_t StyleTargetCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

size_t StyleTargetCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

absl::Status RunStyleTransfer(Vgg19Features& net, const RunParams& params, const StyleTransferOptions& options,
                              const EngineCallbacks& callbacks, torch::Tensor* final_image) {
  // Stages (long side, steps): one unless multires is set.
  std::vector<std::pair<int, int>> stages;
  for (size_t k = 0; k < params.multires_sizes.size(); ++k) {
    stages.emplace_back(params.multires_sizes[k], params.multires_steps[k]);
  }
  if (stages.empty()) stages.emplace_back(params.image_size, params.steps);
  int total_steps = 0;
  for (const auto& stage : stages) total_steps += stage.second;

  FeatureSetup features{net, {}, Preprocessor(params.preprocess, options.device), {}, params.style_layers.size()};
  features.mode.average_pooling = params.pooling == "avg";
  if (params.precision == "bf16") net->CastWeights(features.mode);
  for (const std::string& layer : params.style_layers) features.taps.push_back(LayerFeatureIndex(layer));
  for (const std::string& layer : params.content_layers) features.taps.push_back(LayerFeatureIndex(layer));

  // The evaluation (common/evaluation.h) of step 0, the snapshot steps, the
  // last step and the steps evaluate_at asks for. It reads the images itself
  // at eval_size and uses the network in float32 without touching it, so
  // the run's losses and images are the same with or without it.
  std::string not_evaluated;
  absl::StatusOr<std::unique_ptr<Evaluator>> evaluator =
      Evaluator::Create(net, params, options.device, &not_evaluated);
  if (!evaluator.ok()) return evaluator.status();
  if (*evaluator == nullptr) spdlog::warn("this run's images are not evaluated: {}", not_evaluated);

  torch::Tensor x;
  int offset = 0;               // steps of the stages before this one
  int last_snapshot_step = -1;  // the step of the latest on_snapshot call
  for (size_t stage = 0; stage < stages.size(); ++stage) {
    const auto [size, stage_steps] = stages[stage];
    // The previous stage's buffers have the wrong sizes for this one.
    if (stage > 0) ReleaseCachedCpuMemory();
    const bool last_stage = stage + 1 == stages.size();
    absl::StatusOr<torch::Tensor> content = LoadImageTensor(params.content, size, "content", options.device);
    if (!content.ok()) return content.status();
    if (absl::Status s = CheckReachesDeepestTap(*content, features.taps, "content", params.content); !s.ok()) return s;

    // neural-style's -style_scale: the style images' long side relative to the
    // output's.
    const int style_long_side = std::max(1, static_cast<int>(std::lround(params.style_scale * size)));
    const std::string key = options.style_cache ? StyleTargetKey(params, options, style_long_side) : "";
    std::optional<std::vector<torch::Tensor>> grams;
    if (!key.empty()) grams = options.style_cache->Find(key);
    const bool need_style_images = !grams || (stage == 0 && params.init == "style");
    std::vector<torch::Tensor> styles;
    if (need_style_images) {
      for (const std::string& path : params.style) {
        absl::StatusOr<torch::Tensor> style = LoadImageTensor(path, style_long_side, "style", options.device);
        if (!style.ok()) return style.status();
        if (absl::Status s = CheckReachesDeepestTap(*style, features.taps, "style", path); !s.ok()) return s;
        styles.push_back(*std::move(style));
        if (grams) break;  // only the first, for the initial image
      }
    }
    if (!grams) {
      grams = BlendedStyleGrams(features, params, styles);
      if (!key.empty()) options.style_cache->Insert(key, *grams);
    }
    StyleLoss loss(features, params, options, *content, *std::move(grams));

    if (stage == 0) {
      if (params.init == "style") {
        x = ResizeImageTensor(styles[0], content->size(2), content->size(3)).clamp(0, 1).contiguous();
      } else if (params.init == "noise") {
        torch::Generator generator = at::detail::createCPUGenerator(params.seed);
        x = torch::rand(content->sizes(), generator, torch::TensorOptions().dtype(torch::kFloat)).to(options.device);
      } else {
        x = content->clone();
      }
    } else {
      torch::NoGradGuard no_grad;
      x = torch::nn::functional::interpolate(
              x, torch::nn::functional::InterpolateFuncOptions()
                     .size(std::vector<int64_t>{content->size(2), content->size(3)})
                     .mode(torch::kBilinear)
                     .align_corners(false))
              .clamp(0, 1)
              .contiguous();
    }
    styles.clear();
    x.set_requires_grad(true);
    Optimiser optimiser(params, x);
    // The image before the latest update: when that update makes a loss
    // non-finite, this is the last image with finite losses, the run's
    // result. The copy per step costs ~0.05 ms at 512 px, against ~2 s for
    // the step itself on two CPU cores.
    torch::Tensor previous = torch::empty_like(x.detach());

    // Row t holds the losses of the image after t updates: the forward pass
    // that precedes update t + 1, and after the stage's last update one more
    // forward without gradients. step_seconds is the time of the update that
    // led to the row's image, callbacks excluded. A stage after the first
    // starts from the previous stage's last row, which is not repeated.
    double update_seconds = 0;
    for (int t = 0;; ++t) {
      const int step = offset + t;
      const auto forward_start = std::chrono::steady_clock::now();
      const bool stage_end = t == stage_steps;
      const bool report = t > 0 || stage == 0;
      std::optional<torch::NoGradGuard> no_grad;
      if (stage_end || !optimiser.needs_gradient()) no_grad.emplace();
      Losses losses;
      if (report || optimiser.needs_gradient()) losses = loss(x);
      const double forward_seconds = SecondsSince(forward_start);
      no_grad.reset();

      const bool last = last_stage && stage_end;
      const bool snapshot =
          step > 0 && report && (last || (params.snapshot_every > 0 && step % params.snapshot_every == 0));
      torch::Tensor saved;  // the image as it is handed over, made once for the evaluation and the snapshot
      if (report) {
        StepMetrics metrics = ToMetrics(step, losses, update_seconds);
        if (const std::string non_finite = NonFiniteLoss(metrics); !non_finite.empty()) {
          // Row `step` is not reported; the image before the update that led
          // to it is the result. (Only stage 0 reports its first row, so a
          // step > 0 here always follows an update.)
          const int last_finite = step - 1;
          if (last_finite >= 0 && last_finite != last_snapshot_step && callbacks.on_snapshot) {
            absl::StatusOr<std::string> png = EncodeTensorPng(SavedImage(previous, *content, params.preserve_colors));
            if (!png.ok()) return png.status();
            if (absl::Status s = callbacks.on_snapshot(last_finite, *png); !s.ok()) return s;
          }
          return DivergedError(step, non_finite);
        }
        const bool asked = callbacks.evaluate_at && callbacks.evaluate_at(step);
        if (*evaluator != nullptr && (step == 0 || snapshot || asked)) {
          const auto evaluation_start = std::chrono::steady_clock::now();
          saved = SavedImage(x, *content, params.preserve_colors);
          metrics.eval = (*evaluator)->Evaluate(saved);
          metrics.eval_seconds = SecondsSince(evaluation_start);
        }
        if (callbacks.on_step) callbacks.on_step(metrics);
      }
      if (snapshot && callbacks.on_snapshot) {
        if (!saved.defined()) saved = SavedImage(x, *content, params.preserve_colors);
        absl::StatusOr<std::string> png = EncodeTensorPng(saved);
        if (!png.ok()) return png.status();
        if (absl::Status s = callbacks.on_snapshot(step, *png); !s.ok()) return s;
        last_snapshot_step = step;
      }
      if (stage_end) break;
      if (callbacks.should_stop && callbacks.should_stop()) {
        if (callbacks.on_stopped && step > 0) {
          absl::StatusOr<std::string> png = EncodeTensorPng(SavedImage(x, *content, params.preserve_colors));
          if (png.ok()) callbacks.on_stopped(step, *png);
        }
        return absl::CancelledError(absl::StrCat("stopped after ", step, " of ", total_steps, " steps"));
      }

      const auto update_start = std::chrono::steady_clock::now();
      {
        torch::NoGradGuard no_grad;
        previous.copy_(x);
      }
      optimiser.Step(losses, loss);
      update_seconds = (optimiser.needs_gradient() ? forward_seconds : 0) + SecondsSince(update_start);
    }
    offset += stage_steps;
    if (last_stage && final_image != nullptr) {
      *final_image = SavedImage(x, *content, params.preserve_colors);
    }
  }
  return absl::OkStatus();
}

}  // namespace stylesweep
