#ifndef STYLESWEEP_AGENT_ENGINE_EVALUATOR_H_
#define STYLESWEEP_AGENT_ENGINE_EVALUATOR_H_

// The evaluation metrics of common/evaluation.h for one run's images.
// Engine-internal (LibTorch types).

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/engine/image_tensor.h"
#include "agent/engine/vgg19.h"
#include "common/evaluation.h"
#include "common/run_params.h"

namespace stylesweep {

// Measures images against one run's content and style images, the same way
// for every run of a sweep: at the long side params.eval_size, through the
// run's network with the run's preprocessing, but with the fixed setup of
// common/evaluation.h (max pooling, float32 even when the run computes in
// bfloat16, style taps block1_conv1 .. block5_conv1 with equal weights,
// content tap block4_conv2), whatever the run's own layers, weights, pooling
// and precision.
//
// Where common/evaluation.h leaves room, the definitions are:
//   - Several style images: the style Gram targets blend as the run's do
//     (style_blend_weights, equal when empty); eval/content's reference is
//     the blend-weighted mean of each style image's eval/content (each
//     resized to the content's eval shape); eval/color compares with the
//     blend-weighted mixture of the style images' pixel colours (each
//     image's pixels together weigh its blend weight).
//   - A layer whose target is all zeros (a dead layer, a black image) is
//     left unnormalised in eval/style and eval/content, and a zero reference
//     (eval/style or eval/tv of a flat content image, eval/content of a
//     style image whose features equal the content's) leaves the *_norm
//     metric equal to the raw one.
//   - eval/ssim: 'valid' windows only (no padding), so the map is
//     (H − 10) x (W − 10); data range 1, C1 = 0.01², C2 = 0.03²; the
//     Gaussian-weighted (biased) variances of Wang et al.; luminance
//     Y = 0.299 R + 0.587 G + 0.114 B.
//   - eval/color: sliced Wasserstein-1 over 13 fixed unit directions in RGB
//     (the 3 axes, the 6 face diagonals (1,±1,0), (1,0,±1), (0,1,±1), and
//     the 4 cube diagonals (1,1,1), (1,1,−1), (1,−1,1), (−1,1,1), each
//     normalised), comparing 256 quantiles per direction (at probabilities
//     (k + ½)/256, the smallest value whose cumulative weight exceeds it);
//     the value is the mean over directions and quantiles of |q_x − q_s|.
//
// Cost of Evaluate: one forward pass to block5_conv1 at eval size, two
// 11-tap blurs and a sort of the pixels' 13 projections.
//
// Thread-compatible: Evaluate only reads, but shares the network, so it must
// not run while someone changes the network's parameters.
class Evaluator {
 public:
  // Loads the content and style images at params.eval_size on `device`
  // (where `net` lives) and computes the targets and references. Fails with
  // the loader's status ("content image: ...", "style image: ...") when an
  // image cannot be read. OK with a null pointer when this run cannot be
  // evaluated: `net` stops before block5_conv1 (a weights file that ends
  // early), or an image's short side at eval_size is below the 16 px
  // block5_conv1 needs; `*why_not`, if given, then says which.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(Vgg19Features net, const RunParams& params,
                                                           const torch::Device& device,
                                                           std::string* why_not = nullptr);

  // The metrics of `image` (1 x 3 x H x W RGB on the device, any size):
  // clamped to [0, 1], as it is saved, and resized (bilinear, antialiased,
  // align_corners false) to the content's eval shape unless it has that
  // shape. Computes without gradients and moves one small tensor to the host.
  Evaluation Evaluate(const torch::Tensor& image) const;

  // The content image's shape at eval size.
  int64_t height() const { return content_.size(2); }
  int64_t width() const { return content_.size(3); }

 private:
  // Scalar tensors on the device: the raw distances of one image at eval shape.
  struct Distances {
    torch::Tensor style, content;
  };

  Evaluator(Vgg19Features net, const RunParams& params, const torch::Device& device);
  // Sets the targets and references from the loaded images.
  void Prepare(const torch::Tensor& content, const std::vector<torch::Tensor>& styles,
               const std::vector<double>& blend);
  Distances Network(const torch::Tensor& x) const;
  torch::Tensor Tv(const torch::Tensor& x) const;
  torch::Tensor Ssim(const torch::Tensor& x) const;
  torch::Tensor Color(const torch::Tensor& x) const;

  mutable Vgg19Features net_;  // forward is not const, though it only reads
  Preprocessor preprocess_;
  torch::Device device_;
  std::vector<int> taps_;                   // the style taps, then the content tap
  torch::Tensor content_;                  // 1 x 3 x H x W at eval size
  std::vector<torch::Tensor> style_grams_;  // blended, one per style tap
  std::vector<double> style_scales_;        // mean(G(s)²) per style tap (1 when 0)
  torch::Tensor content_features_;          // F(c) at block4_conv2
  double content_scale_ = 1;                // mean(F(c)²) (1 when 0)
  torch::Tensor content_mean_, content_square_mean_, content_luma_;  // SSIM's blurs of c
  torch::Tensor gaussian_;                  // 11-tap window, sums to 1
  torch::Tensor directions_;                // 3 x 13 unit vectors
  torch::Tensor style_quantiles_;           // 256 x 13
  double reference_style_ = 0, reference_content_ = 0, reference_tv_ = 0;
};

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_EVALUATOR_H_
