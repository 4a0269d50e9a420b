#include "agent/engine/image_io.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/image_header.h"

// stb is compiled into this file only, with static linkage, so it cannot clash
// with another copy (Debian also ships a libstb.so). Only PNG and JPEG are
// accepted inputs, as the engine's contract says.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#include "stb_image.h"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include "stb_image_resize.h"
#pragma GCC diagnostic pop

namespace stylesweep {
namespace {

// Reads the EXIF orientation (1..8) of a JPEG, or 1 when there is none or it
// cannot be parsed. Walks the marker segments up to the start of scan; the tag
// lives in IFD0 of the TIFF structure inside the APP1 "Exif" segment.
int JpegExifOrientation(std::string_view jpeg) {
  const auto* b = reinterpret_cast<const uint8_t*>(jpeg.data());
  const size_t n = jpeg.size();
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return 1;
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (b[pos] != 0xFF) return 1;
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;              // start of scan, end of image
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length field
      pos += 2;
      continue;
    }
    const size_t length = (size_t{b[pos + 2]} << 8) | b[pos + 3];  // includes itself
    if (length < 2 || pos + 2 + length > n) return 1;
    const uint8_t* seg = b + pos + 4;
    const size_t seg_size = length - 2;
    if (marker == 0xE1 && seg_size >= 14 && std::equal(seg, seg + 6, "Exif\0\0")) {
      const uint8_t* tiff = seg + 6;
      const size_t tiff_size = seg_size - 6;
      const bool little = tiff[0] == 'I' && tiff[1] == 'I';
      if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
      auto u16 = [&](size_t at) -> uint32_t {
        return little ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
      };
      auto u32 = [&](size_t at) -> uint32_t {
        return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
      };
      if (u16(2) != 42) return 1;
      const size_t ifd = u32(4);
      if (ifd + 2 > tiff_size) return 1;
      const size_t entries = u16(ifd);
      for (size_t i = 0; i < entries; ++i) {
        const size_t entry = ifd + 2 + 12 * i;
        if (entry + 12 > tiff_size) return 1;
        constexpr uint32_t kOrientationTag = 0x0112, kShortType = 3;
        if (u16(entry) == kOrientationTag && u16(entry + 2) == kShortType) {
          const int orientation = static_cast<int>(u16(entry + 8));
          return orientation >= 1 && orientation <= 8 ? orientation : 1;
        }
      }
      return 1;
    }
    pos += 2 + length;
  }
  return 1;
}

// Turns an image stored with EXIF orientation `orientation` upright: each
// output pixel (x, y) is taken from stored pixel (sx, sy). Orientations 5..8
// swap width and height.
Image ApplyExifOrientation(Image in, int orientation) {
  if (orientation == 1) return in;
  const int w = in.width, h = in.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.pixels.resize(in.pixels.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      // clang-format off
      switch (orientation) {
        case 2: sx = w - 1 - x;                 break;  // mirrored left-right
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;  // upside down
        case 4:                 sy = h - 1 - y; break;  // mirrored top-bottom
        case 5: sx = y;         sy = x;         break;  // transposed
        case 6: sx = y;         sy = h - 1 - x; break;  // needs 90 degrees clockwise
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;  // transversed
        case 8: sx = w - 1 - y; sy = x;         break;  // needs 90 degrees counter-clockwise
      }
      // clang-format on
      std::copy_n(&in.pixels[(static_cast<size_t>(sy) * w + sx) * 3], 3,
                  &out.pixels[(static_cast<size_t>(y) * out.width + x) * 3]);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Image> DecodeImage(std::string_view bytes, const std::string& source) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat("image '", source, "' is empty"));
  if (bytes.size() > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("image '", source, "' is too large (", bytes.size(), " bytes)"));
  }
  // The header first: what the image declares decides what decoding it
  // costs (more than 15 bytes a pixel), so an image over kMaxImagePixels is
  // refused before stb allocates anything, as bad input, not as memory the
  // machine lacks.
  auto header = ReadImageHeader(bytes);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot decode image '", source, "' (", header.status().message(),
                                                   "); expected a PNG or JPEG file"));
  }
  if (absl::Status s = CheckImagePixels(*header, absl::StrCat("image '", source, "'")); !s.ok()) return s;
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> data(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &width,
                            &height, &channels, 0),
      &stbi_image_free);
  if (data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot decode image '", source, "' (", stbi_failure_reason(), "); expected a PNG or JPEG file"));
  }
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  const bool has_alpha = channels == 2 || channels == 4;
  const int colour_channels = channels >= 3 ? 3 : 1;
  for (size_t i = 0; i < static_cast<size_t>(width) * height; ++i) {
    const stbi_uc* px = data.get() + i * channels;
    const float alpha = has_alpha ? px[channels - 1] / 255.0f : 1.0f;
    for (int c = 0; c < 3; ++c) {
      const float value = px[colour_channels == 3 ? c : 0] / 255.0f;
      image.pixels[i * 3 + c] = value * alpha + (1.0f - alpha);  // over white
    }
  }
  return ApplyExifOrientation(std::move(image), JpegExifOrientation(bytes));
}

absl::StatusOr<Image> LoadImage(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(),
                        absl::StrCat("cannot load image: ", std::string(bytes.status().message())));
  }
  return DecodeImage(*bytes, path);
}

Image ResizeLongSide(const Image& image, int long_side) {
  const bool landscape = image.width >= image.height;
  const int long_in = landscape ? image.width : image.height;
  const int short_in = landscape ? image.height : image.width;
  const int short_out = std::max(1, static_cast<int>(std::lround(static_cast<double>(short_in) * long_side / long_in)));
  const int width = landscape ? long_side : short_out;
  const int height = landscape ? short_out : long_side;
  if (width == image.width && height == image.height) return image;

  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  // With valid sizes only stb's scratch allocation can fail: report it as
  // the vector above would have.
  if (!stbir_resize_float_generic(image.pixels.data(), image.width, image.height, 0, out.pixels.data(), width, height,
                                  0, 3, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                                  STBIR_COLORSPACE_LINEAR, nullptr)) {
    throw std::bad_alloc();
  }
  // The filter's weights are non-negative and sum to one, so only rounding
  // can step outside [0, 1].
  for (float& v : out.pixels) v = std::clamp(v, 0.0f, 1.0f);
  return out;
}

absl::StatusOr<std::string> EncodePng(const Image& image) {
  const size_t count = static_cast<size_t>(image.width) * image.height * 3;
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != count) {
    return absl::InvalidArgumentError(absl::StrCat("cannot encode a ", image.width, "x", image.height,
                                                   " image holding ", image.pixels.size(), " values as PNG"));
  }
  std::vector<uint8_t> bytes(count);
  for (size_t i = 0; i < count; ++i) {
    bytes[i] = static_cast<uint8_t>(std::lround(std::clamp(image.pixels[i], 0.0f, 1.0f) * 255.0f));
  }
  std::string png;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
  };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, 3, bytes.data(), image.width * 3)) {
    return absl::InternalError(absl::StrCat("PNG encoding of a ", image.width, "x", image.height, " image failed"));
  }
  return png;
}

}  // namespace stylesweep
