#ifndef STYLESWEEP_COMMON_IMAGE_HEADER_H_
#define STYLESWEEP_COMMON_IMAGE_HEADER_H_

// What an encoded image says about itself before it is decoded: its format
// and the size it declares. Every reader of images from outside (the CLI
// before it sends a sweep, the coordinator before it stores one, the agent
// before it decodes one) looks here first, so that bytes that are not an
// image, or an image whose decoded pixels would not fit in memory, are turned
// away at the cost of reading a few header bytes. Thread-safe: no state.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

enum class ImageFormat { kPng, kJpeg };

// "PNG" or "JPEG".
std::string_view ImageFormatName(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  uint32_t width = 0;   // at least 1
  uint32_t height = 0;  // at least 1

  uint64_t pixels() const { return uint64_t{width} * height; }
};

// Identifies a PNG or JPEG by its first bytes and reads the size it
// declares, without decoding anything:
//  - PNG: the signature, then the IHDR chunk, which must come first (its
//    CRC is not checked); width and height 1..2^31-1, a valid bit depth.
//  - JPEG: SOI, then the marker segments up to the first frame header
//    (SOF0..SOF15 but DHT, JPG and DAC), every length checked against the
//    bytes; a frame height of 0 (size given later by a DNL marker) is refused.
// Reads at most `bytes`, in one pass (each step moves forward), whatever
// the bytes claim. InvalidArgument saying what was expected and what was
// found otherwise ("not a PNG or JPEG: the first bytes are 47 49 46 38 ...",
// "truncated PNG header: ...").
absl::StatusOr<ImageHeader> ReadImageHeader(std::string_view bytes);

// OK when the image declares at most kMaxImagePixels pixels (common/limits.h);
// else InvalidArgument naming `what` (the image, as the caller's user knows
// it), the declared size and the limit:
// "<what> declares 15000x15000 pixels (225000000); an image may have at most
// 64 Mi pixels (67108864, e.g. 8192x8192)".
absl::Status CheckImagePixels(const ImageHeader& header, std::string_view what);

// Both checks an image from outside must pass before it is kept or sent:
// ReadImageHeader, its error prefixed with "<what>: ", then
// CheckImagePixels. Returns the header.
absl::StatusOr<ImageHeader> CheckImage(std::string_view bytes, std::string_view what);

}  // namespace stylesweep

#endif  // STYLESWEEP_COMMON_IMAGE_HEADER_H_
