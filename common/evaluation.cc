#include "common/evaluation.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace stylesweep {

bool Evaluation::operator==(const Evaluation& o) const {
  return style == o.style && content == o.content && tv == o.tv && style_norm == o.style_norm &&
         content_norm == o.content_norm && tv_norm == o.tv_norm && ssim == o.ssim && color == o.color;
}

const std::vector<EvalMetricDef>& EvalMetricDefs() {
  static const std::vector<EvalMetricDef> defs = {
      {"eval/score", nullptr, false, "(style_norm + content_norm) / 2: the default, comparable across runs"},
      {"eval/style", &Evaluation::style, false, "relative Gram error at block1..5_conv1 (0: the style's own)"},
      {"eval/content", &Evaluation::content, false, "relative feature error at block4_conv2 (0: the content)"},
      {"eval/tv", &Evaluation::tv, false, "mean absolute step between neighbouring pixels"},
      {"eval/style_norm", &Evaluation::style_norm, false, "eval/style over the content image's (1: no style)"},
      {"eval/content_norm", &Evaluation::content_norm, false,
       "eval/content over the style image's (0: the content itself)"},
      {"eval/tv_norm", &Evaluation::tv_norm, false, "eval/tv over the content image's"},
      {"eval/ssim", &Evaluation::ssim, true, "structural similarity of the luminance to the content's (1: same)"},
      {"eval/color", &Evaluation::color, false, "colour distance to the style image (0: same palette)"},
  };
  return defs;
}

std::vector<std::string> EvalMetricNames() {
  std::vector<std::string> names;
  for (const EvalMetricDef& def : EvalMetricDefs()) names.emplace_back(def.name);
  return names;
}

namespace {
const EvalMetricDef* FindDef(absl::string_view name) {
  for (const EvalMetricDef& def : EvalMetricDefs()) {
    if (name == def.name) return &def;
  }
  return nullptr;
}
}  // namespace

bool IsEvalMetric(absl::string_view name) { return FindDef(name) != nullptr; }

bool EvalHigherIsBetter(absl::string_view name) {
  const EvalMetricDef* def = FindDef(name);
  return def != nullptr && def->higher_is_better;
}

std::optional<double> EvalMetricValue(const Evaluation& e, absl::string_view name) {
  const EvalMetricDef* def = FindDef(name);
  if (def == nullptr) return std::nullopt;
  return def->field == nullptr ? e.score() : e.*(def->field);
}

absl::Status CheckEvaluation(const Evaluation& e) {
  for (const EvalMetricDef& def : EvalMetricDefs()) {
    if (def.field == nullptr) continue;
    const double value = e.*(def.field);
    const bool ssim = def.field == &Evaluation::ssim;
    const bool ok = std::isfinite(value) && (ssim ? value >= -1 && value <= 1 : value >= 0);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(def.name, " is ", value, "; it must be finite and ",
                                                     ssim ? "within [-1, 1]" : "at least 0"));
    }
  }
  return absl::OkStatus();
}

}  // namespace stylesweep
