#include "agent/engine/image_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// The encoder for inputs EncodePng does not write (grayscale, alpha, JPEG).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
#pragma GCC diagnostic pop

#include "tests/testing/crafted_images.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;

std::string Encode(int width, int height, int channels, const std::vector<uint8_t>& pixels, bool jpeg = false) {
  std::string out;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
  };
  const int ok = jpeg ? stbi_write_jpg_to_func(append, &out, width, height, channels, pixels.data(), 95)
                      : stbi_write_png_to_func(append, &out, width, height, channels, pixels.data(), width * channels);
  if (!ok) ADD_FAILURE() << "stb could not encode the test image";
  return out;
}

std::string TempDir() {
  std::string dir = ::testing::TempDir() + "image_io_test_XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return dir;
}

std::string WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Pixel (x, y) channel c.
float At(const Image& image, int x, int y, int c) { return image.pixels[(y * image.width + x) * 3 + c]; }

TEST(DecodeImageTest, GrayscaleBecomesRgb) {
  absl::StatusOr<Image> image = DecodeImage(Encode(2, 1, 1, {0, 200}), "gray.png");
  ASSERT_TRUE(image.ok()) << image.status();
  ASSERT_EQ(image->width, 2);
  ASSERT_EQ(image->height, 1);
  for (int c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(At(*image, 0, 0, c), 0.0f);
    EXPECT_FLOAT_EQ(At(*image, 1, 0, c), 200 / 255.0f);
  }
}

TEST(DecodeImageTest, AlphaIsCompositedOverWhite) {
  const std::vector<uint8_t> rgba = {255, 0, 0,   255,   // opaque red
                                     0,   0, 255, 0,     // fully transparent blue
                                     0,   0, 0,   102};  // 40% black
  absl::StatusOr<Image> image = DecodeImage(Encode(3, 1, 4, rgba), "rgba.png");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_FLOAT_EQ(At(*image, 0, 0, 0), 1.0f);
  EXPECT_FLOAT_EQ(At(*image, 0, 0, 1), 0.0f);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(At(*image, 1, 0, c), 1.0f);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(At(*image, 2, 0, c), 0.6f, 1e-6);
}

TEST(DecodeImageTest, GrayWithAlphaIsCompositedOverWhite) {
  absl::StatusOr<Image> image = DecodeImage(Encode(1, 1, 2, {0, 51}), "gray_alpha.png");
  ASSERT_TRUE(image.ok()) << image.status();
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(At(*image, 0, 0, c), 0.8f, 1e-6);
}

TEST(DecodeImageTest, EmptyAndCorruptBytesNameTheSource) {
  absl::StatusOr<Image> empty = DecodeImage("", "empty.png");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("'empty.png' is empty"));

  std::string truncated = Encode(8, 8, 3, std::vector<uint8_t>(8 * 8 * 3, 7));
  truncated.resize(truncated.size() / 2);
  absl::StatusOr<Image> corrupt = DecodeImage(truncated, "half.png");
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(corrupt.status().message()), HasSubstr("cannot decode image 'half.png'"));

  absl::StatusOr<Image> text = DecodeImage("hello, world", "notes.txt");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("expected a PNG or JPEG"));
}

// An image's header says how much decoding it would cost: one declaring more
// than kMaxImagePixels is refused as bad input, before stb sees it (stb
// would first ask for the whole image's memory, then fail on the missing
// data with a message of its own).
TEST(DecodeImageTest, AnImageDeclaringTooManyPixelsIsRefusedBeforeDecoding) {
  absl::StatusOr<Image> bomb = DecodeImage(testing::PngDeclaring(15000, 15000), "bomb.png");
  EXPECT_EQ(bomb.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bomb.status().message(),
            "image 'bomb.png' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi pixels "
            "(67108864, e.g. 8192x8192)");
  absl::StatusOr<Image> jpeg = DecodeImage(testing::JpegDeclaring(65535, 65535), "bomb.jpg");
  EXPECT_EQ(jpeg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(jpeg.status().message()), HasSubstr("image 'bomb.jpg' declares 65535x65535 pixels"));
  // Within the limit, the same empty image data reaches stb, which fails on it.
  absl::StatusOr<Image> empty_data = DecodeImage(testing::PngDeclaring(8192, 8192), "empty-data.png");
  EXPECT_EQ(empty_data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty_data.status().message()), HasSubstr("cannot decode image 'empty-data.png' ("));
}

TEST(LoadImageTest, MissingEmptyAndCorruptFilesNameThePath) {
  const std::string dir = TempDir();
  absl::StatusOr<Image> missing = LoadImage(dir + "/nope.png");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir + "/nope.png"));

  absl::StatusOr<Image> empty = LoadImage(WriteFile(dir + "/empty.png", ""));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr(dir + "/empty.png"));

  absl::StatusOr<Image> corrupt = LoadImage(WriteFile(dir + "/corrupt.jpg", "\xFF\xD8\xFF garbage"));
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(corrupt.status().message()), HasSubstr(dir + "/corrupt.jpg"));

  absl::StatusOr<Image> good = LoadImage(WriteFile(dir + "/good.png", Encode(3, 2, 3, std::vector<uint8_t>(18, 9))));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->width, 3);
  EXPECT_EQ(good->height, 2);
  std::filesystem::remove_all(dir);
}

// A JPEG of a 16x8 image, left half red and right half blue, carrying an
// EXIF orientation tag in the given byte order.
std::string OrientedJpeg(int orientation, bool big_endian) {
  std::vector<uint8_t> pixels(16 * 8 * 3, 0);
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 16; ++x) pixels[(y * 16 + x) * 3 + (x < 8 ? 0 : 2)] = 255;
  }
  const std::string jpeg = Encode(16, 8, 3, pixels, /*jpeg=*/true);
  auto u16 = [&](int v) {
    return big_endian ? std::string{char(v >> 8), char(v & 0xFF)} : std::string{char(v & 0xFF), char(v >> 8)};
  };
  auto u32 = [&](int v) { return big_endian ? u16(0) + u16(v) : u16(v) + u16(0); };
  const std::string tiff = (big_endian ? std::string("MM") : std::string("II")) + u16(42) + u32(8) + u16(1) +
                           u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0) + u32(0);
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const std::string app1 =
      std::string("\xFF\xE1") + char((payload.size() + 2) >> 8) + char((payload.size() + 2) & 0xFF) + payload;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}

bool IsRed(const Image& image, int x, int y) { return At(image, x, y, 0) > 0.8f && At(image, x, y, 2) < 0.2f; }
bool IsBlue(const Image& image, int x, int y) { return At(image, x, y, 2) > 0.8f && At(image, x, y, 0) < 0.2f; }

TEST(DecodeImageTest, JpegExifOrientationIsApplied) {
  absl::StatusOr<Image> upright = DecodeImage(OrientedJpeg(1, false), "o1.jpg");
  ASSERT_TRUE(upright.ok()) << upright.status();
  EXPECT_EQ(upright->width, 16);
  EXPECT_TRUE(IsRed(*upright, 2, 4));
  EXPECT_TRUE(IsBlue(*upright, 13, 4));

  // 6: the camera was turned clockwise, so the stored left (red) half
  // belongs on top once turned upright.
  absl::StatusOr<Image> cw = DecodeImage(OrientedJpeg(6, false), "o6.jpg");
  ASSERT_TRUE(cw.ok()) << cw.status();
  EXPECT_EQ(cw->width, 8);
  EXPECT_EQ(cw->height, 16);
  EXPECT_TRUE(IsRed(*cw, 4, 2));
  EXPECT_TRUE(IsBlue(*cw, 4, 13));

  absl::StatusOr<Image> ccw = DecodeImage(OrientedJpeg(8, true), "o8.jpg");
  ASSERT_TRUE(ccw.ok()) << ccw.status();
  EXPECT_EQ(ccw->width, 8);
  EXPECT_EQ(ccw->height, 16);
  EXPECT_TRUE(IsBlue(*ccw, 4, 2));
  EXPECT_TRUE(IsRed(*ccw, 4, 13));

  absl::StatusOr<Image> flipped = DecodeImage(OrientedJpeg(3, true), "o3.jpg");
  ASSERT_TRUE(flipped.ok()) << flipped.status();
  EXPECT_EQ(flipped->width, 16);
  EXPECT_TRUE(IsBlue(*flipped, 2, 4));
  EXPECT_TRUE(IsRed(*flipped, 13, 4));
}

Image Constant(int width, int height, float value) {
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.assign(static_cast<size_t>(width) * height * 3, value);
  return image;
}

TEST(ResizeLongSideTest, ScalesTheLongSideAndKeepsTheAspect) {
  Image landscape = ResizeLongSide(Constant(451, 300, 0.5f), 128);
  EXPECT_EQ(landscape.width, 128);
  EXPECT_EQ(landscape.height, 85);
  Image portrait = ResizeLongSide(Constant(300, 451, 0.5f), 256);
  EXPECT_EQ(portrait.width, 170);
  EXPECT_EQ(portrait.height, 256);
  Image up = ResizeLongSide(Constant(10, 5, 0.5f), 40);
  EXPECT_EQ(up.width, 40);
  EXPECT_EQ(up.height, 20);
  Image sliver = ResizeLongSide(Constant(1000, 1, 0.5f), 16);
  EXPECT_EQ(sliver.width, 16);
  EXPECT_EQ(sliver.height, 1);
}

TEST(ResizeLongSideTest, AntialiasesWithoutOvershoot) {
  // A one-pixel checkerboard averages to grey when shrunk 4x; an aliasing
  // (point-sampling) resize would keep black and white pixels.
  Image board = Constant(64, 64, 0.0f);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      for (int c = 0; c < 3; ++c) board.pixels[(y * 64 + x) * 3 + c] = (x + y) % 2 ? 1.0f : 0.0f;
    }
  }
  Image small = ResizeLongSide(board, 16);
  for (float v : small.pixels) {
    EXPECT_NEAR(v, 0.5f, 0.1f);
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  Image same = ResizeLongSide(board, 64);
  EXPECT_EQ(same.pixels, board.pixels);
}

TEST(EncodePngTest, RoundTripsAtEightBits) {
  Image image = Constant(5, 3, 0.0f);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<float>(i) / image.pixels.size();
  image.pixels[0] = -0.5f;  // clamped
  image.pixels[1] = 7.0f;
  absl::StatusOr<std::string> png = EncodePng(image);
  ASSERT_TRUE(png.ok()) << png.status();
  absl::StatusOr<Image> decoded = DecodeImage(*png, "round-trip");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->width, 5);
  ASSERT_EQ(decoded->height, 3);
  EXPECT_FLOAT_EQ(decoded->pixels[0], 0.0f);
  EXPECT_FLOAT_EQ(decoded->pixels[1], 1.0f);
  for (size_t i = 2; i < image.pixels.size(); ++i) {
    EXPECT_FLOAT_EQ(decoded->pixels[i], std::round(image.pixels[i] * 255.0f) / 255.0f) << i;
  }
}

TEST(EncodePngTest, RejectsInconsistentImages) {
  Image image = Constant(4, 4, 0.5f);
  image.pixels.pop_back();
  EXPECT_EQ(EncodePng(image).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodePng(Image()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stylesweep
