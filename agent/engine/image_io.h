#ifndef STYLESWEEP_AGENT_ENGINE_IMAGE_IO_H_
#define STYLESWEEP_AGENT_ENGINE_IMAGE_IO_H_

// Image decoding, resizing and PNG encoding for the engine and the report
// tools. Torch-free (stb underneath), so tools can link it without LibTorch.
// Writing files is common/files.h's job (WriteFileAtomically). All functions
// are thread-safe: they share no state.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stylesweep {

// An RGB image, row-major, interleaved (HWC): pixel (x, y) channel c is
// pixels[(y * width + x) * 3 + c]. Values are in [0, 1], linear in the file's
// 8-bit code values (no sRGB decoding: the networks were trained on code values).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<float> pixels;
};

// Decodes a PNG or JPEG held in memory. Grayscale becomes RGB; an alpha channel
// is composited over white (transparent areas show as a white page would show
// them, instead of the arbitrary colour often stored under alpha 0). JPEGs are
// turned upright according to their EXIF orientation tag. 16-bit PNGs are
// reduced to 8 bits. `source` names the bytes in error messages (usually the
// path). Fails with InvalidArgument when the bytes are empty, not a
// decodable PNG/JPEG, or declare more than kMaxImagePixels in their header
// (common/limits.h; checked before anything is decoded, so such an image
// costs no memory).
absl::StatusOr<Image> DecodeImage(std::string_view bytes, const std::string& source);

// Reads and decodes the file at `path`. NotFound when it does not exist,
// PermissionDenied when it cannot be read, InvalidArgument when it is empty,
// a directory or not a decodable PNG/JPEG. Messages name the path.
absl::StatusOr<Image> LoadImage(const std::string& path);

// Returns `image` scaled so that its longer side is `long_side` pixels, the
// shorter side rounded to the nearest pixel (at least 1). Uses a triangle
// (tent) filter widened to the scale factor, i.e. antialiased bilinear as in
// PIL and torchvision's Resize: no ringing, so no values outside [0, 1].
// Returns an exact copy when the size already matches. `long_side` must be
// positive and `image` non-empty.
Image ResizeLongSide(const Image& image, int long_side);

// Encodes `image` as an 8-bit RGB PNG (values clamped to [0, 1], rounded to
// the nearest code value). Fails with InvalidArgument on an empty image or
// mismatched pixel count.
absl::StatusOr<std::string> EncodePng(const Image& image);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_IMAGE_IO_H_
