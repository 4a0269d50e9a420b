#include "common/run_params.h"

#include "common/hash.h"

#include "absl/strings/str_cat.h"
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
      {"seed", seed},
      {"preprocess", preprocess},
  };
}

absl::StatusOr<RunParams> RunParams::FromJson(const nlohmann::json& j, bool check_relations) {
  if (!j.is_object()) return absl::InvalidArgumentError("run parameters must be a JSON object");
  RunParams p;
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
    get("steps", p.steps);
    get("image_size", p.image_size);
    get("snapshot_every", p.snapshot_every);
    get("seed", p.seed);
    get("preprocess", p.preprocess);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad run parameters: ", e.what()));
  }
  if (absl::Status s = check_relations ? p.Validate() : p.ValidateFields(); !s.ok()) return s;
  return p;
}

absl::Status RunParams::Validate() {
  if (absl::Status s = ValidateFields(); !s.ok()) return s;
  return ValidateRelations();
}

absl::Status RunParams::ValidateRelations() const {
  if (!style_blend_weights.empty() && style_blend_weights.size() != style.size()) {
    return absl::InvalidArgumentError(absl::StrCat("style_blend_weights has ", style_blend_weights.size(),
                                                   " weights for ", style.size(), " style images"));
  }
  return absl::OkStatus();
}

absl::Status RunParams::ValidateFields() {
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
      {"seed", ParamKind::kInt},
      {"preprocess", ParamKind::kString},
  };
  return defs;
}

}  // namespace stylesweep
