#include "common/layers.h"

#include <array>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/text.h"

namespace stylesweep {
namespace {

struct Layer {
  const char* name;
  int block;
  int conv;
  int conv_index;  // index of the Conv2d in vgg19().features
};

constexpr std::array<Layer, 16> kLayers = {{
    {"block1_conv1", 1, 1, 0},   {"block1_conv2", 1, 2, 2},
    {"block2_conv1", 2, 1, 5},   {"block2_conv2", 2, 2, 7},
    {"block3_conv1", 3, 1, 10},  {"block3_conv2", 3, 2, 12},
    {"block3_conv3", 3, 3, 14},  {"block3_conv4", 3, 4, 16},
    {"block4_conv1", 4, 1, 19},  {"block4_conv2", 4, 2, 21},
    {"block4_conv3", 4, 3, 23},  {"block4_conv4", 4, 4, 25},
    {"block5_conv1", 5, 1, 28},  {"block5_conv2", 5, 2, 30},
    {"block5_conv3", 5, 3, 32},  {"block5_conv4", 5, 4, 34},
}};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

absl::StatusOr<std::string> CanonicalLayerName(std::string_view name) {
  const std::string lower = Lower(name);
  for (const Layer& l : kLayers) {
    const std::string suffix = absl::StrCat(l.block, "_", l.conv);
    if (lower == l.name || lower == "conv" + suffix || lower == "relu" + suffix) {
      return std::string(l.name);
    }
  }
  std::vector<std::string> names;
  for (const Layer& l : kLayers) names.emplace_back(l.name);
  std::string msg = absl::StrCat("unknown VGG19 layer '", std::string(name), "'");
  if (auto close = ClosestMatch(lower, names); !close.empty()) {
    absl::StrAppend(&msg, " (did you mean '", close, "'?)");
  }
  absl::StrAppend(&msg, "; layers are block1_conv1 .. block5_conv4 (aliases conv1_1, relu1_1 also work)");
  return absl::InvalidArgumentError(msg);
}

int LayerFeatureIndex(std::string_view canonical) {
  for (const Layer& l : kLayers) {
    if (canonical == l.name) return l.conv_index + 1;
  }
  return -1;
}

int LayerConvOrdinal(std::string_view canonical) {
  for (size_t i = 0; i < kLayers.size(); ++i) {
    if (canonical == kLayers[i].name) return static_cast<int>(i);
  }
  return -1;
}

const std::vector<std::string>& AllLayerNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>;
    for (const Layer& l : kLayers) v->emplace_back(l.name);
    return v;
  }();
  return *names;
}

}  // namespace stylesweep
