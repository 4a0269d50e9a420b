#include "common/run_params.h"

#include "common/hash.h"
#include "common/evaluation.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/layers.h"

namespace stylesweep {
namespace {

absl::Status CanonicaliseLayers(std::vector<std::string>& layers, const char* key) {
  if (layers.empty()) return absl::InvalidArgumentError(absl::StrCat(key, " must name at least one layer"));
  for (std::string& layer : layers) {
    auto canonical = CanonicalLayerName(layer);
    if (!canonical.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", canonical.status().message()));
    }
    layer = *canonical;
  }
  return absl::OkStatus();
}

// Reads the integer at `key` into `field` when it is set, refusing a value
// outside the field's type instead of letting the conversion wrap it.
template <typename Int>
absl::Status GetInteger(const nlohmann::json& value, const char* key, Int& field) {
  constexpr Int kLowest = std::numeric_limits<Int>::lowest();
  constexpr Int kHighest = std::numeric_limits<Int>::max();
  auto out_of_range = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " must be an integer from ", kLowest, " to ", kHighest, ", got ", value.dump()));
  };
  if (value.is_number_unsigned()) {
    const uint64_t n = value.get<uint64_t>();
    if (n > static_cast<uint64_t>(kHighest)) return out_of_range();
    field = static_cast<Int>(n);
  } else if (value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    if (n < 0 ? (std::is_unsigned_v<Int> || n < static_cast<int64_t>(kLowest))
              : static_cast<uint64_t>(n) > static_cast<uint64_t>(kHighest)) {
      return out_of_range();
    }
    field = static_cast<Int>(n);
  } else if (value.is_number_float()) {
    // A whole number written as a real (5.0) is that integer.
    const double d = value.get<double>();
    if (d != std::floor(d)) return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer, got ", d));
    // 2^digits is one past the highest value, and exact as a double.
    if (!(d >= static_cast<double>(kLowest) && d < std::ldexp(1.0, std::numeric_limits<Int>::digits))) {
      return out_of_range();
    }
    field = static_cast<Int>(d);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be an integer, got ", value.dump()));
  }
  return absl::OkStatus();
}

// A word parameter and the words it may be.
struct OneOf {
  const char* key;
  const std::string* value;
  std::vector<std::string> allowed;
};

}  // namespace

nlohmann::json RunParams::ToJson() const {
  // nlohmann::json objects are std::map-backed: keys come out sorted.
  return nlohmann::json{
      {"content", content},
      {"style", style},
      {"style_blend_weights", style_blend_weights},
      {"style_layers", style_layers},
      {"content_layers", content_layers},
      {"style_weight", style_weight},
      {"content_weight", content_weight},
      {"tv_weight", tv_weight},
      {"learning_rate", learning_rate},
      {"steps", steps},
      {"image_size", image_size},
      {"snapshot_every", snapshot_every},
      {"eval_size", eval_size},
      {"seed", seed},
      {"preprocess", preprocess},
      {"weights", weights},
      {"optimizer", optimizer},
      {"adam_epsilon_mode", adam_epsilon_mode},
      {"init", init},
      {"preserve_colors", preserve_colors},
      {"style_scale", style_scale},
      {"pooling", pooling},
      {"style_layer_weights", style_layer_weights},
      {"precision", precision},
      {"multires_sizes", multires_sizes},
      {"multires_steps", multires_steps},
  };
}

bool RepresentableAsFloat32(double value) {
  const double magnitude = std::fabs(value);
  return std::isfinite(value) && magnitude <= FLT_MAX && (magnitude == 0 || magnitude >= FLT_TRUE_MIN);
}

absl::Status CheckFloat32(absl::string_view key, double value) {
  if (RepresentableAsFloat32(value)) return absl::OkStatus();
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be a finite number, got ", value));
  }
  if (std::fabs(value) > FLT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(key, " must be at most ", FLT_MAX,
                                                   " in magnitude (the float32 range), got ", value));
  }
  return absl::InvalidArgumentError(absl::StrCat(key, " must be 0 or at least ", FLT_TRUE_MIN,
                                                 " in magnitude (float32 would round it to 0), got ", value));
}

absl::StatusOr<RunParams> RunParams::FromJson(const nlohmann::json& j, bool check_relations) {
  if (!j.is_object()) return absl::InvalidArgumentError("run parameters must be a JSON object");
  RunParams p;
  auto get_integer = [&j](const char* key, auto& field) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    return GetInteger(*it, key, field);
  };
  auto get_integers = [&j](const char* key, std::vector<int>& field) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat(key, " must be a list of integers"));
    field.assign(it->size(), 0);
    for (size_t i = 0; i < it->size(); ++i) {
      if (absl::Status s = GetInteger((*it)[i], key, field[i]); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  for (absl::Status s : {get_integer("steps", p.steps), get_integer("image_size", p.image_size),
                         get_integer("snapshot_every", p.snapshot_every), get_integer("seed", p.seed),
                         get_integer("eval_size", p.eval_size),
                         get_integers("multires_sizes", p.multires_sizes),
                         get_integers("multires_steps", p.multires_steps)}) {
    if (!s.ok()) return s;
  }
  try {
    auto get = [&j](const char* key, auto& field) {
      if (auto it = j.find(key); it != j.end() && !it->is_null()) it->get_to(field);
    };
    get("content", p.content);
    if (auto it = j.find("style"); it != j.end() && it->is_string()) {
      p.style = {it->get<std::string>()};  // one image may be written without a list
    } else {
      get("style", p.style);
    }
    get("style_blend_weights", p.style_blend_weights);
    get("style_layers", p.style_layers);
    get("content_layers", p.content_layers);
    get("style_weight", p.style_weight);
    get("content_weight", p.content_weight);
    get("tv_weight", p.tv_weight);
    get("learning_rate", p.learning_rate);
    get("preprocess", p.preprocess);
    get("weights", p.weights);
    get("optimizer", p.optimizer);
    get("adam_epsilon_mode", p.adam_epsilon_mode);
    get("init", p.init);
    if (auto it = j.find("preserve_colors"); it != j.end() && !it->is_null()) {
      // The sweep language passes words as strings ("true"); JSON has booleans.
      if (it->is_boolean()) {
        p.preserve_colors = it->get<bool>();
      } else if (it->is_string() && (*it == "true" || *it == "false")) {
        p.preserve_colors = *it == "true";
      } else if (it->is_number_integer() && (*it == 0 || *it == 1)) {
        p.preserve_colors = *it == 1;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("preserve_colors must be true or false, got ", it->dump()));
      }
    }
    get("style_scale", p.style_scale);
    get("pooling", p.pooling);
    get("style_layer_weights", p.style_layer_weights);
    get("precision", p.precision);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad run parameters: ", e.what()));
  }
  if (absl::Status s = check_relations ? p.Validate() : p.ValidateFields(); !s.ok()) return s;
  return p;
}

absl::Status RunParams::Validate() {
  if (absl::Status s = ValidateFields(); !s.ok()) return s;
  if (absl::Status s = ValidateRelations(); !s.ok()) return s;
  if (!multires_sizes.empty()) {
    image_size = multires_sizes.back();
    steps = 0;
    for (int n : multires_steps) steps += n;  // ValidateFields bounds the sum
  }
  return absl::OkStatus();
}

absl::Status RunParams::ValidateRelations() const {
  if (!style_blend_weights.empty() && style_blend_weights.size() != style.size()) {
    return absl::InvalidArgumentError(absl::StrCat("style_blend_weights has ", style_blend_weights.size(),
                                                   " weights for ", style.size(), " style images"));
  }
  if (!style_layer_weights.empty() && style_layer_weights.size() != style_layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("style_layer_weights has ", style_layer_weights.size(),
                                                   " weights for ", style_layers.size(), " style layers"));
  }
  if (multires_sizes.size() != multires_steps.size()) {
    return absl::InvalidArgumentError(absl::StrCat("multires_sizes has ", multires_sizes.size(),
                                                   " sizes but multires_steps has ", multires_steps.size(),
                                                   " step counts; give one step count per size"));
  }
  return absl::OkStatus();
}

absl::Status RunParams::ValidateFields() {
  // Before the range checks, so that NaN and infinities are called what they are.
  for (auto [key, value] : {std::pair{"style_weight", style_weight}, std::pair{"content_weight", content_weight},
                            std::pair{"tv_weight", tv_weight}, std::pair{"learning_rate", learning_rate},
                            std::pair{"style_scale", style_scale}}) {
    if (absl::Status s = CheckFloat32(key, value); !s.ok()) return s;
  }
  for (auto [key, list] : {std::pair{"style_blend_weights", &style_blend_weights},
                           std::pair{"style_layer_weights", &style_layer_weights}}) {
    for (double w : *list) {
      if (absl::Status s = CheckFloat32(key, w); !s.ok()) return s;
    }
  }
  if (content.empty()) return absl::InvalidArgumentError("content: an image is required");
  if (style.empty()) return absl::InvalidArgumentError("style: an image is required");
  for (const std::string& s : style) {
    if (s.empty()) return absl::InvalidArgumentError("style: an image path is empty");
  }
  for (double w : style_blend_weights) {
    if (!(w >= 0)) return absl::InvalidArgumentError(absl::StrCat("style_blend_weights must be >= 0, got ", w));
  }
  if (absl::Status s = CanonicaliseLayers(style_layers, "style_layers"); !s.ok()) return s;
  if (absl::Status s = CanonicaliseLayers(content_layers, "content_layers"); !s.ok()) return s;
  if (steps <= 0) return absl::InvalidArgumentError(absl::StrCat("steps must be positive, got ", steps));
  if (image_size < 16 || image_size > kMaxImageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("image_size must be from 16 to ", kMaxImageSize, " pixels, got ", image_size));
  }
  if (snapshot_every < 0) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot_every must be >= 0, got ", snapshot_every));
  }
  if (eval_size < kMinEvalSize || eval_size > kMaxEvalSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval_size must be from ", kMinEvalSize, " to ", kMaxEvalSize, " pixels, got ", eval_size));
  }
  if (!(learning_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("learning_rate must be positive, got ", learning_rate));
  }
  for (auto [key, value] : {std::pair{"style_weight", style_weight}, std::pair{"content_weight", content_weight},
                            std::pair{"tv_weight", tv_weight}}) {
    if (!(value >= 0)) return absl::InvalidArgumentError(absl::StrCat(key, " must be >= 0, got ", value));
  }
  if (preprocess != "torchvision" && preprocess != "caffe") {
    return absl::InvalidArgumentError(
        absl::StrCat("preprocess must be 'torchvision' or 'caffe', got '", preprocess, "'"));
  }
  for (const auto& [key, value, allowed] : std::vector<OneOf>{
           {"optimizer", &optimizer, {"adam", "lbfgs"}},
           {"adam_epsilon_mode", &adam_epsilon_mode, {"tf", "torch"}},
           {"init", &init, {"content", "style", "noise"}},
           {"pooling", &pooling, {"max", "avg"}},
           {"precision", &precision, {"fp32", "bf16"}},
       }) {
    if (std::find(allowed.begin(), allowed.end(), *value) == allowed.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, " must be '", absl::StrJoin(allowed, "' or '"), "', got '", *value, "'"));
    }
  }
  if (!(style_scale > 0) || style_scale * image_size > kMaxImageSize) {
    return absl::InvalidArgumentError(absl::StrCat("style_scale must be > 0 and style_scale x image_size at most ",
                                                   kMaxImageSize, ", got ", style_scale));
  }
  for (double w : style_layer_weights) {
    if (!(w >= 0)) return absl::InvalidArgumentError(absl::StrCat("style_layer_weights must be >= 0, got ", w));
  }
  for (int size : multires_sizes) {
    if (size < 16 || size > kMaxImageSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("multires_sizes must be from 16 to ", kMaxImageSize, " pixels, got ", size));
    }
  }
  int64_t multires_total = 0;
  for (int n : multires_steps) {
    if (n <= 0) return absl::InvalidArgumentError(absl::StrCat("multires_steps must be positive, got ", n));
    multires_total += n;
  }
  if (multires_total > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("multires_steps add up to ", multires_total,
                                                   " steps, more than ", std::numeric_limits<int>::max()));
  }
  return absl::OkStatus();
}

std::string RunParams::Hash() const { return Sha256Hex(ToJson().dump()); }

const std::vector<ParamDef>& RunParamDefs() {
  static const std::vector<ParamDef> defs = {
      {"content", ParamKind::kImage},
      {"style", ParamKind::kImageList},
      {"style_blend_weights", ParamKind::kNumberList},
      {"style_layers", ParamKind::kStringList},
      {"content_layers", ParamKind::kStringList},
      {"style_weight", ParamKind::kNumber},
      {"content_weight", ParamKind::kNumber},
      {"tv_weight", ParamKind::kNumber},
      {"learning_rate", ParamKind::kNumber},
      {"steps", ParamKind::kInt},
      {"image_size", ParamKind::kInt},
      {"snapshot_every", ParamKind::kInt},
      {"eval_size", ParamKind::kInt},
      {"seed", ParamKind::kInt},
      {"preprocess", ParamKind::kString},
      {"weights", ParamKind::kWeights},
      {"optimizer", ParamKind::kString},
      {"adam_epsilon_mode", ParamKind::kString},
      {"init", ParamKind::kString},
      {"preserve_colors", ParamKind::kString},
      {"style_scale", ParamKind::kNumber},
      {"pooling", ParamKind::kString},
      {"style_layer_weights", ParamKind::kNumberList},
      {"precision", ParamKind::kString},
      {"multires_sizes", ParamKind::kIntList},
      {"multires_steps", ParamKind::kIntList},
  };
  return defs;
}

int PlannedSteps(const std::string& params_json) {
  const nlohmann::json params = nlohmann::json::parse(params_json, nullptr, /*allow_exceptions=*/false);
  if (!params.is_object()) return 0;
  const auto steps = params.find("steps");
  return steps != params.end() && steps->is_number_integer() ? steps->get<int>() : 0;
}

}  // namespace stylesweep
