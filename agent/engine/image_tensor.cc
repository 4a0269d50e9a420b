#include "agent/engine/image_tensor.h"

#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/engine/image_io.h"

namespace stylesweep {

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

Preprocessor::Preprocessor(const std::string& kind, const torch::Device& device) : caffe_(kind == "caffe") {
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
  if (caffe_) {
    mean_ = torch::tensor({103.939f, 116.779f, 123.68f}, options).view({1, 3, 1, 1});  // BGR, 0..255
  } else {
    mean_ = torch::tensor({0.485f, 0.456f, 0.406f}, options).view({1, 3, 1, 1});
    std_ = torch::tensor({0.229f, 0.224f, 0.225f}, options).view({1, 3, 1, 1});
  }
}

torch::Tensor Preprocessor::operator()(const torch::Tensor& rgb) const {
  if (caffe_) return rgb.flip({1}) * 255.0f - mean_;
  return (rgb - mean_) / std_;
}

torch::Tensor ResizeImageTensor(const torch::Tensor& image, int64_t height, int64_t width) {
  if (image.size(2) == height && image.size(3) == width) return image;
  return torch::nn::functional::interpolate(image, torch::nn::functional::InterpolateFuncOptions()
                                                       .size(std::vector<int64_t>{height, width})
                                                       .mode(torch::kBilinear)
                                                       .align_corners(false)
                                                       .antialias(true));
}

}  // namespace stylesweep
