#include "agent/engine/evaluator.h"

#include <torch/types.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/losses.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

constexpr int kQuantiles = 256;
constexpr int kSsimWindow = 11;
constexpr double kSsimSigma = 1.5;
constexpr double kSsimC1 = 0.01 * 0.01;
constexpr double kSsimC2 = 0.03 * 0.03;
// block5_conv1 lies behind four 2x2 pools.
constexpr int64_t kMinShortSide = 16;

const std::vector<std::string>& StyleTaps() {
  static const std::vector<std::string> taps = {"block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1",
                                                "block5_conv1"};
  return taps;
}
constexpr char kContentTap[] = "block4_conv2";

// The network's taps: the style taps, then the content tap.
std::vector<int> Taps() {
  std::vector<int> taps;
  for (const std::string& layer : StyleTaps()) taps.push_back(LayerFeatureIndex(layer));
  taps.push_back(LayerFeatureIndex(kContentTap));
  return taps;
}

// Luminance (Rec. 601), 1 x 1 x H x W.
torch::Tensor Luma(const torch::Tensor& rgb) {
  return rgb.select(1, 0).mul(0.299).add_(rgb.select(1, 1), 0.587).add_(rgb.select(1, 2), 0.114).unsqueeze(1);
}

// The separable Gaussian blur of N x 1 x H x W maps over 'valid' windows only.
torch::Tensor Blur(const torch::Tensor& maps, const torch::Tensor& gaussian) {
  const torch::Tensor vertical = torch::conv2d(maps, gaussian.view({1, 1, kSsimWindow, 1}));
  return torch::conv2d(vertical, gaussian.view({1, 1, 1, kSsimWindow}));
}

// Positions x 3 pixel colours.
torch::Tensor Pixels(const torch::Tensor& rgb) { return rgb[0].reshape({3, -1}).t(); }

// The 256 quantiles (at (k + ½)/256) of each column of `values` (M x D),
// each row weighing `weights[row]` (weights sum to 1): for each probability
// the smallest value whose cumulative weight exceeds it. 256 x D.
torch::Tensor WeightedQuantiles(const torch::Tensor& values, const torch::Tensor& weights) {
  const auto [sorted, order] = values.sort(0);                                    // M x D
  const torch::Tensor cumulative = weights.to(torch::kDouble).index({order}).cumsum(0);  // M x D
  const torch::Tensor probabilities =
      (torch::arange(kQuantiles, cumulative.options()) + 0.5) / static_cast<double>(kQuantiles);
  const int64_t columns = values.size(1);
  const torch::Tensor index =
      torch::searchsorted(cumulative.t().contiguous(), probabilities.expand({columns, kQuantiles}).contiguous(),
                          /*out_int32=*/false, /*right=*/true)
          .clamp_max_(values.size(0) - 1);  // D x 256
  return sorted.gather(0, index.t());
}

double ItemOrOne(const torch::Tensor& scalar) {
  const double value = scalar.item<double>();
  return value > 0 ? value : 1.0;
}

// `value` over `reference`, or `value` itself when the reference is 0.
double Normalised(double value, double reference) { return reference > 0 ? value / reference : value; }

}  // namespace

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(Vgg19Features net, const RunParams& params,
                                                             const torch::Device& device, std::string* why_not) {
  torch::NoGradGuard no_grad;
  absl::StatusOr<torch::Tensor> content = LoadImageTensor(params.content, params.eval_size, "content", device);
  if (!content.ok()) return content.status();
  std::vector<torch::Tensor> styles;
  for (const std::string& path : params.style) {
    absl::StatusOr<torch::Tensor> style = LoadImageTensor(path, params.eval_size, "style", device);
    if (!style.ok()) return style.status();
    styles.push_back(*std::move(style));
  }

  auto unavailable = [why_not](std::string reason) -> std::unique_ptr<Evaluator> {
    if (why_not != nullptr) *why_not = std::move(reason);
    return nullptr;
  };
  const std::vector<int> taps = Taps();
  const int deepest = *std::max_element(taps.begin(), taps.end());
  if (net->max_tap() < deepest) {
    return unavailable(absl::StrCat("the network stops at ", AllLayerNames()[net->num_convs() - 1],
                                    ", before the evaluation's block5_conv1"));
  }
  auto short_side = [](const torch::Tensor& image) { return std::min(image.size(2), image.size(3)); };
  if (short_side(*content) < kMinShortSide) {
    return unavailable(absl::StrCat("the content image's short side is ", short_side(*content), " px at eval_size ",
                                    params.eval_size, "; the evaluation needs ", kMinShortSide));
  }
  for (size_t k = 0; k < styles.size(); ++k) {
    if (short_side(styles[k]) < kMinShortSide) {
      return unavailable(absl::StrCat("style image '", params.style[k], "' has a short side of ",
                                      short_side(styles[k]), " px at eval_size ", params.eval_size,
                                      "; the evaluation needs ", kMinShortSide));
    }
  }

  std::unique_ptr<Evaluator> evaluator(new Evaluator(std::move(net), params, device));
  evaluator->Prepare(*content, styles, StyleBlendWeights(params));
  return evaluator;
}

Evaluator::Evaluator(Vgg19Features net, const RunParams& params, const torch::Device& device)
    : net_(std::move(net)), preprocess_(params.preprocess, device), device_(device), taps_(Taps()) {}

void Evaluator::Prepare(const torch::Tensor& content, const std::vector<torch::Tensor>& styles,
                        const std::vector<double>& blend) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  content_ = content;
  const size_t n_style = StyleTaps().size();

  // Targets. Each layer's scale starts at 1 so that Network() can measure
  // the style images' own distances before the targets are final.
  style_scales_.assign(n_style, 1.0);
  style_grams_.assign(n_style, torch::Tensor());
  for (size_t k = 0; k < styles.size(); ++k) {
    const std::vector<torch::Tensor> f = net_->forward(preprocess_(styles[k]), taps_, Vgg19FeaturesImpl::Mode());
    for (size_t i = 0; i < n_style; ++i) {
      torch::Tensor weighted = Gram(f[i]) * blend[k];
      style_grams_[i] = style_grams_[i].defined() ? style_grams_[i] + weighted : weighted;
    }
  }
  for (size_t i = 0; i < n_style; ++i) style_scales_[i] = ItemOrOne(style_grams_[i].square().mean());
  const std::vector<torch::Tensor> c = net_->forward(preprocess_(content_), taps_, Vgg19FeaturesImpl::Mode());
  content_features_ = c.back();
  content_scale_ = ItemOrOne(content_features_.square().mean());

  // SSIM's window and the content's blurred luminance.
  const torch::Tensor offsets = torch::arange(kSsimWindow, options.dtype(torch::kDouble)) - (kSsimWindow - 1) / 2;
  const torch::Tensor gaussian = (-offsets.square() / (2 * kSsimSigma * kSsimSigma)).exp();
  gaussian_ = (gaussian / gaussian.sum()).to(torch::kFloat);
  content_luma_ = Luma(content_);
  content_mean_ = Blur(content_luma_, gaussian_);
  content_square_mean_ = Blur(content_luma_.square(), gaussian_);

  // Colour: the directions, and the quantiles of the style images' mixture.
  const float r = 1 / std::sqrt(2.0f), s = 1 / std::sqrt(3.0f);
  directions_ = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f,  // axes
                               r, r, 0.0f, r, -r, 0.0f, r, 0.0f, r,                   // face diagonals
                               r, 0.0f, -r, 0.0f, r, r, 0.0f, r, -r,                  //
                               s, s, s, s, s, -s, s, -s, s, -s, s, s},                // cube diagonals
                              options)
                    .view({-1, 3})
                    .t()
                    .contiguous();
  std::vector<torch::Tensor> projections, weights;
  for (size_t k = 0; k < styles.size(); ++k) {
    const torch::Tensor pixels = Pixels(styles[k]);
    projections.push_back(torch::mm(pixels, directions_));
    weights.push_back(torch::full({pixels.size(0)}, blend[k] / static_cast<double>(pixels.size(0)),
                                  options.dtype(torch::kDouble)));
  }
  style_quantiles_ = WeightedQuantiles(torch::cat(projections), torch::cat(weights));

  // References.
  const Distances of_content = Network(content_);
  torch::Tensor of_style = torch::zeros({}, options.dtype(torch::kDouble));
  for (size_t k = 0; k < styles.size(); ++k) {
    of_style += Network(ResizeImageTensor(styles[k], height(), width())).content.to(torch::kDouble) * blend[k];
  }
  const torch::Tensor references =
      torch::stack({of_content.style.to(torch::kDouble), of_style, Tv(content_).to(torch::kDouble)}).cpu();
  reference_style_ = references[0].item<double>();
  reference_content_ = references[1].item<double>();
  reference_tv_ = references[2].item<double>();
}

Evaluator::Distances Evaluator::Network(const torch::Tensor& x) const {
  const std::vector<torch::Tensor> f = net_->forward(preprocess_(x), taps_, Vgg19FeaturesImpl::Mode());
  const size_t n_style = style_grams_.size();
  torch::Tensor style;
  for (size_t i = 0; i < n_style; ++i) {
    torch::Tensor term = (Gram(f[i]) - style_grams_[i]).square().mean() / style_scales_[i];
    style = style.defined() ? style + term : term;
  }
  return {style / static_cast<double>(n_style), (f.back() - content_features_).square().mean() / content_scale_};
}

torch::Tensor Evaluator::Tv(const torch::Tensor& x) const {
  return TotalVariation(x) / static_cast<double>(3 * x.size(2) * x.size(3));
}

torch::Tensor Evaluator::Ssim(const torch::Tensor& x) const {
  const torch::Tensor luma = Luma(x);
  const torch::Tensor blurred =
      Blur(torch::cat({luma, luma.square(), luma * content_luma_}), gaussian_);  // 3 x 1 x H' x W'
  const torch::Tensor mean = blurred[0], square_mean = blurred[1], cross_mean = blurred[2];
  const torch::Tensor& content_mean = content_mean_[0];
  const torch::Tensor variance = square_mean - mean.square();
  const torch::Tensor content_variance = content_square_mean_[0] - content_mean.square();
  const torch::Tensor covariance = cross_mean - mean * content_mean;
  const torch::Tensor map = (2 * mean * content_mean + kSsimC1) * (2 * covariance + kSsimC2) /
                            ((mean.square() + content_mean.square() + kSsimC1) * (variance + content_variance + kSsimC2));
  return map.mean();
}

torch::Tensor Evaluator::Color(const torch::Tensor& x) const {
  const torch::Tensor pixels = Pixels(x);
  const int64_t n = pixels.size(0);
  const torch::Tensor weights = torch::full({n}, 1.0 / static_cast<double>(n), pixels.options().dtype(torch::kDouble));
  return (WeightedQuantiles(torch::mm(pixels, directions_), weights) - style_quantiles_).abs().mean();
}

Evaluation Evaluator::Evaluate(const torch::Tensor& image) const {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = ResizeImageTensor(image.detach().clamp(0, 1), height(), width()).contiguous();
  const Distances distances = Network(x);
  const torch::Tensor values = torch::stack({distances.style, distances.content, Tv(x), Ssim(x), Color(x)})
                                   .to(torch::kCPU, torch::kDouble);
  const double* v = values.data_ptr<double>();
  Evaluation e;
  e.style = v[0];
  e.content = v[1];
  e.tv = v[2];
  e.ssim = v[3];
  e.color = v[4];
  e.style_norm = Normalised(e.style, reference_style_);
  e.content_norm = Normalised(e.content, reference_content_);
  e.tv_norm = Normalised(e.tv, reference_tv_);
  return e;
}

}  // namespace stylesweep
