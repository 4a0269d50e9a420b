#ifndef STYLESWEEP_COMMON_RUN_PARAMS_H_
#define STYLESWEEP_COMMON_RUN_PARAMS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace stylesweep {

// Larger images do not fit even a big GPU's memory for VGG19's activations.
inline constexpr int kMaxImageSize = 16384;

// The engine computes in float32, so every real parameter must survive the
// conversion: finite, at most FLT_MAX in magnitude, and 0 or at least
// FLT_TRUE_MIN in magnitude (a smaller one would silently become 0).
bool RepresentableAsFloat32(double value);
// OK, or "KEY must ..., got VALUE" saying which of those rules `value` breaks.
absl::Status CheckFloat32(absl::string_view key, double value);

// The fully resolved parameters of one run: what the engine needs to produce
// one image. Defaults are the TensorFlow tutorial's (see README, "Algorithm").
//
// `content` and `style` are image references: a filesystem path when the run is
// local (`stylesweep stylize`), or a blob id ("sha256:<hex>") once a sweep has
// been submitted and the coordinator holds the bytes. Several style images
// are blended by `style_blend_weights` (empty: equally).
struct RunParams {
  std::string content;
  std::vector<std::string> style;
  std::vector<double> style_blend_weights;
  std::vector<std::string> style_layers = {"block1_conv1", "block2_conv1", "block3_conv1",
                                           "block4_conv1", "block5_conv1"};
  std::vector<std::string> content_layers = {"block5_conv2"};
  double style_weight = 1e-2;
  double content_weight = 1e4;
  double tv_weight = 30;
  double learning_rate = 0.02;
  int steps = 1000;
  int image_size = 512;
  int snapshot_every = 100;  // 0: only the final image
  // The long side at which the run's image is evaluated (common/evaluation.h).
  // One value for a whole sweep, so that every run is measured alike.
  int eval_size = 256;  // kDefaultEvalSize
  uint64_t seed = 0;
  // "torchvision": RGB in [0,1] normalised by ImageNet mean/std.
  // "caffe": BGR in 0..255 minus the Caffe mean pixel.
  std::string preprocess = "torchvision";
  // A VGG19 weights file on the agents' machines (absolute once submitted).
  // Empty: each agent's own (its --weights, or the seeded random network).
  std::string weights;

  // Engine options (README, "Engine options"). The defaults reproduce the
  // tutorial exactly.
  std::string optimizer = "adam";          // "adam" (TF-form or torch-form, see adam_epsilon_mode) | "lbfgs"
  std::string adam_epsilon_mode = "tf";    // "tf": ε before bias correction | "torch": after
  std::string init = "content";            // "content" | "style" (first style image) | "noise" (from seed)
  bool preserve_colors = false;            // keep the content's chroma (YIQ), the output's luminance
  double style_scale = 1.0;                // style images' long side = style_scale × image_size
  std::string pooling = "max";             // "max" | "avg"
  std::vector<double> style_layer_weights;  // one per style layer; empty: all 1
  std::string precision = "fp32";          // "fp32" | "bf16" (convolutions only)
  // Coarse-to-fine: stage i runs multires_steps[i] steps at long side
  // multires_sizes[i]. When set, Validate() overrides image_size with the last
  // size and steps with the sum, so `steps` is always the run's total.
  std::vector<int> multires_sizes;
  std::vector<int> multires_steps;

  // Calls fn on every image reference (content, then each style), which may
  // rewrite it.
  template <typename Fn>
  void ForEachImage(Fn&& fn) {
    fn(content);
    for (std::string& s : style) fn(s);
  }

  // Canonical JSON: every field, keys sorted, layer names canonical. Two runs
  // with equal parameters have byte-equal JSON (and so equal hashes).
  nlohmann::json ToJson() const;

  // Parses and validates (layer names, ranges). Missing keys take defaults.
  // An integer outside its field's type (steps: 4294967297, seed: -1) is
  // refused, never wrapped.
  // Without `check_relations`, rules between parameters (one blend weight per
  // style image) are left out: the sweep language checks each value alone
  // first, and whole runs once the grid is expanded.
  static absl::StatusOr<RunParams> FromJson(const nlohmann::json& j, bool check_relations = true);

  // Checks ranges (every real representable in float32, see CheckFloat32),
  // layer names and the rules between parameters;
  // canonicalises layer names in place, and with multires set overrides
  // image_size and steps by the last size and the sum of the stages' steps.
  absl::Status Validate();
  absl::Status ValidateFields();
  absl::Status ValidateRelations() const;

  // Hex SHA-256 of ToJson().dump(): a stable identity for duplicate detection.
  std::string Hash() const;
};

// The steps a run's stored parameters (RunParams::ToJson) plan, without
// parsing the rest of them; 0 when the text says none. For progress, rungs
// and ETAs read from many runs.
int PlannedSteps(const std::string& params_json);

// The type of a run parameter's values, as the sweep language checks them.
enum class ParamKind {
  kImage,       // an image path
  kImageList,   // one image path or a list of them
  kWeights,     // a weights file path
  kString,      // one of a fixed set of words
  kStringList,  // a list of layer names
  kNumber,
  kNumberList,
  kInt,
  kIntList,
};

struct ParamDef {
  const char* name;  // the JSON and YAML key
  ParamKind kind;
};

// Every run parameter, in a stable order.
const std::vector<ParamDef>& RunParamDefs();

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_RUN_PARAMS_H_
