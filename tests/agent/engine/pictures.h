#ifndef STYLESWEEP_TESTS_AGENT_ENGINE_PICTURES_H_
#define STYLESWEEP_TESTS_AGENT_ENGINE_PICTURES_H_

// Deterministic test pictures for the engine's tests, as PNG files and as
// the tensors the engine would read from them.

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/engine/image_io.h"
#include "tests/agent/engine/weights_fixtures.h"

namespace stylesweep::engine_testing {

// Smooth gradients plus a hashed texture, as 8-bit code values (what the
// engine will read back from the PNG). `salt` makes different pictures.
inline std::vector<uint8_t> Picture(int width, int height, int salt) {
  std::vector<uint8_t> bytes(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) {
        const uint32_t hash = (x * 73856093u) ^ (y * 19349663u) ^ (c * 83492791u) ^ (salt * 2654435761u);
        const int smooth = (x * 255 / width + y * 128 / height + c * 60 + salt * 40) % 256;
        bytes[(static_cast<size_t>(y) * width + x) * 3 + c] = static_cast<uint8_t>((smooth + hash % 61) % 256);
      }
    }
  }
  return bytes;
}

inline std::string WritePicture(const std::string& path, int width, int height, int salt) {
  Image image;
  image.width = width;
  image.height = height;
  for (uint8_t b : Picture(width, height, salt)) image.pixels.push_back(b / 255.0f);
  absl::StatusOr<std::string> png = EncodePng(image);
  EXPECT_TRUE(png.ok()) << png.status();
  WriteBytes(path, *png);
  return path;
}

// A picture without pixel-level texture: a few smooth waves per side, as a
// photograph is mostly made of, so that resizing it changes little.
inline std::string WriteSmoothPicture(const std::string& path, int width, int height, int salt) {
  constexpr double kPi = 3.14159265358979323846;
  Image image;
  image.width = width;
  image.height = height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double u = static_cast<double>(x) / width, v = static_cast<double>(y) / height;
      for (int c = 0; c < 3; ++c) {
        const double wave = std::sin(2 * kPi * ((2 + salt) * u + 0.3 * c + 0.1 * salt)) *
                            std::cos(2 * kPi * ((1.5 + 0.5 * c) * v + 0.37 * salt));
        image.pixels.push_back(static_cast<float>(0.5 + 0.3 * wave + 0.15 * (u - 0.5)));
      }
    }
  }
  absl::StatusOr<std::string> png = EncodePng(image);
  EXPECT_TRUE(png.ok()) << png.status();
  WriteBytes(path, *png);
  return path;
}

// The picture as a 1 x 3 x H x W float tensor of RGB in [0, 1].
inline torch::Tensor PictureTensor(int width, int height, int salt) {
  std::vector<uint8_t> bytes = Picture(width, height, salt);
  return torch::from_blob(bytes.data(), {height, width, 3}, torch::kUInt8)
             .permute({2, 0, 1})
             .unsqueeze(0)
             .to(torch::kFloat) /
         255.0f;
}

}  // namespace stylesweep::engine_testing

#endif  // STYLESWEEP_TESTS_AGENT_ENGINE_PICTURES_H_
