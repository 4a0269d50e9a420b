#include "agent/engine/style_transfer.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/image_io.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

// The tutorial's Adam settings; RunParams carries only the learning rate.
constexpr double kBeta1 = 0.99;
constexpr double kBeta2 = 0.999;
constexpr double kEpsilon = 0.1;

absl::StatusOr<torch::Tensor> LoadImageTensor(const std::string& path, int long_side, const char* role,
                                              const torch::Device& device) {
  absl::StatusOr<Image> image = LoadImage(path);
  if (!image.ok()) {
    return absl::Status(image.status().code(), absl::StrCat(role, " image: ", std::string(image.status().message())));
  }
  Image resized = ResizeLongSide(*image, long_side);
  return torch::from_blob(resized.pixels.data(), {resized.height, resized.width, 3}, torch::kFloat)
      .permute({2, 0, 1})
      .unsqueeze(0)
      .clone(at::MemoryFormat::Contiguous)  // owns its memory: `resized` dies here
      .to(device);
}

// What the network's weights expect as input, computed inside the loss graph
// so that the optimised image stays RGB in [0, 1].
class Preprocessor {
 public:
  Preprocessor(const std::string& kind, const torch::Device& device) : caffe_(kind == "caffe") {
    const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
    if (caffe_) {
      mean_ = torch::tensor({103.939f, 116.779f, 123.68f}, options).view({1, 3, 1, 1});  // BGR, 0..255
    } else {
      mean_ = torch::tensor({0.485f, 0.456f, 0.406f}, options).view({1, 3, 1, 1});
      std_ = torch::tensor({0.229f, 0.224f, 0.225f}, options).view({1, 3, 1, 1});
    }
  }

  torch::Tensor operator()(const torch::Tensor& rgb) const {
    if (caffe_) return rgb.flip({1}) * 255.0f - mean_;
    return (rgb - mean_) / std_;
  }

 private:
  bool caffe_;
  torch::Tensor mean_, std_;
};

// G = F·Fᵀ / (H·W) for a 1 x C x H x W activation. Computed as (Fᵀ)ᵀ·Fᵀ on
// the positions x channels matrix, which is a view of the channels-last
// activations the network returns.
torch::Tensor Gram(const torch::Tensor& features) {
  const int64_t channels = features.size(1), positions = features.size(2) * features.size(3);
  const torch::Tensor f = features.permute({0, 2, 3, 1}).reshape({positions, channels});
  return torch::mm(f.t(), f) / static_cast<double>(positions);
}

// The weighted loss terms of one image (scalars on the device).
struct Losses {
  torch::Tensor content, style, tv, total;
  std::vector<torch::Tensor> style_per_layer;
};

// The loss function of one run: the targets are computed once, here.
class StyleLoss {
 public:
  StyleLoss(Vgg19Features net, const RunParams& params, const StyleTransferOptions& options,
            const torch::Tensor& content_image, const std::vector<torch::Tensor>& style_images)
      : net_(std::move(net)), preprocess_(params.preprocess, options.device), tv_weight_(params.tv_weight) {
    for (const std::string& layer : params.style_layers) taps_.push_back(LayerFeatureIndex(layer));
    for (const std::string& layer : params.content_layers) taps_.push_back(LayerFeatureIndex(layer));
    n_style_ = params.style_layers.size();

    torch::NoGradGuard no_grad;
    // Several style images blend as neural-style does: the target Gram matrix
    // of each layer is the weighted mean of the images' Gram matrices.
    std::vector<double> blend = params.style_blend_weights;
    if (blend.empty()) blend.assign(style_images.size(), 1.0);
    double blend_sum = 0;
    for (double w : blend) blend_sum += w;
    std::vector<torch::Tensor> style_grams(n_style_);
    for (size_t k = 0; k < style_images.size(); ++k) {
      std::vector<torch::Tensor> features = Features(style_images[k]);
      const double w = blend_sum > 0 ? blend[k] / blend_sum : 1.0 / static_cast<double>(style_images.size());
      for (size_t i = 0; i < n_style_; ++i) {
        torch::Tensor weighted = Gram(features[i]) * w;
        style_grams[i] = style_grams[i].defined() ? style_grams[i] + weighted : weighted;
      }
    }
    std::vector<torch::Tensor> content_features = Features(content_image);
    for (size_t i = 0; i < taps_.size(); ++i) {
      const bool is_style = i < n_style_;
      torch::Tensor target = is_style ? style_grams[i] : content_features[i];
      double coefficient = is_style ? params.style_weight / static_cast<double>(params.style_layers.size())
                                    : params.content_weight / static_cast<double>(params.content_layers.size());
      if (options.normalise_by_targets) {
        const double scale = target.square().mean().item<double>();
        if (scale > 0) coefficient /= scale;  // an all-zero target (a dead layer) stays unnormalised
      }
      targets_.push_back(std::move(target));
      coefficients_.push_back(coefficient);
    }
  }

  Losses operator()(const torch::Tensor& image) {
    std::vector<torch::Tensor> features = Features(image);
    Losses losses;
    torch::Tensor content_sum, style_sum;
    for (size_t i = 0; i < taps_.size(); ++i) {
      const bool is_style = i < n_style_;
      torch::Tensor term = torch::mse_loss(is_style ? Gram(features[i]) : features[i], targets_[i]) * coefficients_[i];
      if (is_style) losses.style_per_layer.push_back(term);
      torch::Tensor& sum = is_style ? style_sum : content_sum;
      sum = sum.defined() ? sum + term : term;
    }
    losses.style = style_sum;
    losses.content = content_sum;
    const torch::Tensor dy = image.slice(2, 1) - image.slice(2, 0, -1);
    const torch::Tensor dx = image.slice(3, 1) - image.slice(3, 0, -1);
    losses.tv = (dy.abs().sum() + dx.abs().sum()) * tv_weight_;
    losses.total = losses.style + losses.content + losses.tv;
    return losses;
  }

 private:
  std::vector<torch::Tensor> Features(const torch::Tensor& image) { return net_->forward(preprocess_(image), taps_); }

  Vgg19Features net_;
  Preprocessor preprocess_;
  double tv_weight_;
  std::vector<int> taps_;  // style layers first, then content layers
  size_t n_style_ = 0;
  std::vector<torch::Tensor> targets_;  // Gram matrices for style taps, activations for content taps
  std::vector<double> coefficients_;    // weight / layer count (/ target scale)
};

// Adam as TensorFlow/Keras implement it: ε is added to √v before the bias
// correction is folded into the step size,
//   x -= lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε).
// torch::optim::Adam adds ε after the correction, which with the tutorial's
// large ε = 0.1 is a different optimiser.
class TfAdam {
 public:
  TfAdam(const torch::Tensor& like, double learning_rate)
      : learning_rate_(learning_rate), m_(torch::zeros_like(like)), v_(torch::zeros_like(like)) {}

  // Updates `x` in place from its gradient, then clips it to [0, 1].
  void Step(torch::Tensor& x, const torch::Tensor& gradient) {
    torch::NoGradGuard no_grad;
    ++t_;
    m_.mul_(kBeta1).add_(gradient, 1 - kBeta1);
    v_.mul_(kBeta2).addcmul_(gradient, gradient, 1 - kBeta2);
    const double step_size = learning_rate_ * std::sqrt(1 - std::pow(kBeta2, t_)) / (1 - std::pow(kBeta1, t_));
    x.addcdiv_(m_, v_.sqrt().add_(kEpsilon), -step_size);
    x.clamp_(0, 1);
  }

 private:
  double learning_rate_;
  torch::Tensor m_, v_;
  int64_t t_ = 0;
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

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

absl::Status RunStyleTransfer(Vgg19Features& net, const RunParams& params, const StyleTransferOptions& options,
                              const EngineCallbacks& callbacks, torch::Tensor* final_image) {
  absl::StatusOr<torch::Tensor> content = LoadImageTensor(params.content, params.image_size, "content", options.device);
  if (!content.ok()) return content.status();
  std::vector<torch::Tensor> styles;
  for (const std::string& path : params.style) {
    absl::StatusOr<torch::Tensor> style = LoadImageTensor(path, params.image_size, "style", options.device);
    if (!style.ok()) return style.status();
    styles.push_back(*std::move(style));
  }

  StyleLoss loss(net, params, options, *content, styles);
  torch::Tensor x = content->clone();
  x.set_requires_grad(true);
  TfAdam adam(x, params.learning_rate);

  // Row t holds the losses of the image after t updates: the forward pass
  // that precedes update t + 1, and after the last update one more forward
  // without gradients. step_seconds is the time of the update that led to
  // the row's image, callbacks excluded.
  double update_seconds = 0;
  for (int t = 0;; ++t) {
    const auto forward_start = std::chrono::steady_clock::now();
    const bool last = t == params.steps;
    std::optional<torch::NoGradGuard> no_grad;
    if (last) no_grad.emplace();
    Losses losses = loss(x);
    const double forward_seconds = SecondsSince(forward_start);

    if (callbacks.on_step) callbacks.on_step(ToMetrics(t, losses, update_seconds));
    const bool snapshot = t > 0 && (last || (params.snapshot_every > 0 && t % params.snapshot_every == 0));
    if (snapshot && callbacks.on_snapshot) {
      absl::StatusOr<std::string> png = EncodeTensorPng(x);
      if (!png.ok()) return png.status();
      if (absl::Status s = callbacks.on_snapshot(t, *png); !s.ok()) return s;
    }
    if (last) break;
    if (callbacks.should_stop && callbacks.should_stop()) {
      return absl::CancelledError(absl::StrCat("stopped after ", t, " of ", params.steps, " steps"));
    }

    const auto update_start = std::chrono::steady_clock::now();
    const torch::Tensor gradient = torch::autograd::grad({losses.total}, {x})[0];
    losses = Losses();  // frees the graph's activations before the update
    adam.Step(x, gradient);
    update_seconds = forward_seconds + SecondsSince(update_start);
  }
  if (final_image != nullptr) *final_image = x.detach();
  return absl::OkStatus();
}

}  // namespace stylesweep
