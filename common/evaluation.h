#ifndef STYLESWEEP_COMMON_EVALUATION_H_
#define STYLESWEEP_COMMON_EVALUATION_H_

// Evaluation metrics: measures of a run's image that mean the same in every
// run of a sweep, so that runs with different loss weights, layers, sizes or
// optimisers can be ranked against each other. A run's own losses (loss/*)
// are weighted by that run's own settings and cannot be.
//
// The agent's evaluator (agent/engine/evaluator.h) computes them on the image
// resized to the sweep's eval_size (long side), with a fixed network setup
// that ignores the run's weights and layers: the run's network and
// preprocessing, max pooling, float32, the style taps block1_conv1 ..
// block5_conv1 with equal weights and the content tap block4_conv2.
// G(F) = F·Fᵀ / (H·W) is the Gram matrix of a C×H×W activation F; x is the
// image, c the content image and s the style target (the run's style images,
// blended as the run blends them), all at eval_size.
//
//   eval/style    mean over the five style taps of
//                 mean((G(x) − G(s))²) / mean(G(s)²)      0: the style's own
//   eval/content  mean((F(x) − F(c))²) / mean(F(c)²)      0: the content itself
//   eval/tv       (Σ|x[i+1,j] − x[i,j]| + Σ|x[i,j+1] − x[i,j]|) / (3·H·W),
//                 the mean absolute step between neighbours, per channel
//   eval/style_norm    eval/style(x) / eval/style(c):    1 where the content
//                      image itself stands, 0 when the style is matched
//   eval/content_norm  eval/content(x) / eval/content(s): 0 for the content
//                      image, 1 where the style image stands
//   eval/tv_norm       eval/tv(x) / eval/tv(c):          1 as smooth as the
//                      content image, 0 flat
//   eval/ssim     structural similarity (Wang et al. 2004; Gaussian window
//                 11 px, σ 1.5) of x's luminance to c's: 1 identical.
//                 Needs no network, so it means the same with random weights.
//   eval/color    sliced Wasserstein-1 distance between the colours of x's
//                 pixels and those of s (RGB in [0, 1], fixed directions):
//                 0 the same palette. Needs no network.
//   eval/score    (eval/style_norm + eval/content_norm) / 2, the default
//                 metric of a sweep: 0.5 for the content image and for the
//                 style image alike, lower for an image that takes the style
//                 while keeping the content. Comparable across every run of a
//                 sweep, whatever its weights, layers or image_size.
//
// Lower is better for every metric except eval/ssim.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stylesweep {

// The default and the limits of the sweep key `eval_size`.
inline constexpr int kDefaultEvalSize = 256;
inline constexpr int kMinEvalSize = 32;   // below this the deepest tap has no pixels left
inline constexpr int kMaxEvalSize = 4096;

struct Evaluation {
  double style = 0;
  double content = 0;
  double tv = 0;
  double style_norm = 0;
  double content_norm = 0;
  double tv_norm = 0;
  double ssim = 0;
  double color = 0;

  double score() const { return (style_norm + content_norm) / 2; }

  bool operator==(const Evaluation& other) const;
};

struct EvalMetricDef {
  const char* name;  // "eval/style", ...
  double Evaluation::*field;  // nullptr for eval/score (derived)
  bool higher_is_better;
  const char* summary;  // one line, for --help and error messages
};

// Every evaluation metric, in display order (eval/score first).
const std::vector<EvalMetricDef>& EvalMetricDefs();
// Their names, in the same order.
std::vector<std::string> EvalMetricNames();
// Whether `name` is an evaluation metric ("eval/...").
bool IsEvalMetric(absl::string_view name);
// Whether higher values of the evaluation metric `name` are better.
bool EvalHigherIsBetter(absl::string_view name);
// The value of the evaluation metric `name` of `e`; nullopt for other names.
std::optional<double> EvalMetricValue(const Evaluation& e, absl::string_view name);

// OK when every value is finite and within its range (distances and ratios
// at least 0, ssim within [-1, 1]); else InvalidArgument naming the metric
// and the value. Values from an agent are checked with this before they are
// stored.
absl::Status CheckEvaluation(const Evaluation& e);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_EVALUATION_H_
