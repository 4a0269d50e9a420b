#include "common/image_header.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/limits.h"

namespace stylesweep {
namespace {

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);
constexpr std::string_view kJpegStart("\xff\xd8", 2);
// Signature (8), then IHDR: length (4), type (4), data (13), CRC (4).
constexpr size_t kPngHeaderBytes = 33;
constexpr uint32_t kPngMaxDimension = 0x7fffffffu;  // 2^31-1, the PNG specification's limit

uint8_t Byte(std::string_view bytes, size_t i) { return static_cast<uint8_t>(bytes[i]); }
uint32_t BigEndian16(std::string_view bytes, size_t i) { return (uint32_t{Byte(bytes, i)} << 8) | Byte(bytes, i + 1); }
uint32_t BigEndian32(std::string_view bytes, size_t i) {
  return (BigEndian16(bytes, i) << 16) | BigEndian16(bytes, i + 2);
}

// Up to the first 8 bytes, in hex and as text ('.' for what is not
// printable ASCII, so a message never carries control characters).
std::string FirstBytes(std::string_view bytes) {
  const std::string_view head = bytes.substr(0, 8);
  std::string hex, text;
  for (size_t i = 0; i < head.size(); ++i) {
    absl::StrAppend(&hex, i > 0 ? " " : "", absl::StrFormat("%02x", Byte(head, i)));
    text.push_back(Byte(head, i) >= 0x20 && Byte(head, i) < 0x7f ? head[i] : '.');
  }
  return absl::StrCat(hex, " (\"", text, "\")");
}

// A PNG chunk type as text, or in hex when it is not four letters.
std::string ChunkType(std::string_view type) {
  if (std::all_of(type.begin(), type.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); })) {
    return absl::StrCat("'", std::string(type), "'");
  }
  std::string hex;
  for (size_t i = 0; i < type.size(); ++i) absl::StrAppend(&hex, i > 0 ? " " : "", absl::StrFormat("%02x", Byte(type, i)));
  return absl::StrCat("bytes ", hex);
}

// Formats users sometimes save as .png or .jpg by mistake.
std::string_view OtherFormat(std::string_view bytes) {
  if (bytes.substr(0, 4) == "GIF8") return "a GIF image";
  if (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP") return "a WebP image";
  if (bytes.substr(0, 4) == std::string_view("II*\0", 4) || bytes.substr(0, 4) == std::string_view("MM\0*", 4)) {
    return "a TIFF image";
  }
  return "";
}

absl::Status Truncated(std::string_view format, std::string_view what, size_t needed, size_t size) {
  return absl::InvalidArgumentError(absl::StrCat("truncated ", std::string(format), " header: ", std::string(what),
                                                 " needs ", needed,
                                                 " bytes, the data has ", size));
}

absl::StatusOr<ImageHeader> ReadPngHeader(std::string_view bytes) {
  if (bytes.size() < kPngHeaderBytes) {
    return Truncated("PNG", "the signature and IHDR chunk", kPngHeaderBytes, bytes.size());
  }
  const uint32_t length = BigEndian32(bytes, 8);
  const std::string_view type = bytes.substr(12, 4);
  if (type != "IHDR" || length != 13) {
    return absl::InvalidArgumentError(absl::StrCat("malformed PNG header: the first chunk must be IHDR of 13 bytes, "
                                                   "found ", ChunkType(type), " of ", length, " bytes"));
  }
  ImageHeader header{ImageFormat::kPng, BigEndian32(bytes, 16), BigEndian32(bytes, 20)};
  if (header.width == 0 || header.height == 0 || header.width > kPngMaxDimension ||
      header.height > kPngMaxDimension) {
    return absl::InvalidArgumentError(absl::StrCat("malformed PNG header: IHDR declares ", header.width, "x",
                                                   header.height, " pixels; each side must be 1 to 2147483647"));
  }
  const uint8_t depth = Byte(bytes, 24), colour = Byte(bytes, 25);
  const bool valid_depth = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
  const bool valid_colour = colour == 0 || colour == 2 || colour == 3 || colour == 4 || colour == 6;
  if (!valid_depth || !valid_colour) {
    return absl::InvalidArgumentError(absl::StrCat("malformed PNG header: IHDR declares bit depth ", depth,
                                                   " and colour type ", colour,
                                                   "; expected a depth of 1, 2, 4, 8 or 16 and a colour type of "
                                                   "0, 2, 3, 4 or 6"));
  }
  return header;
}

// SOF0..SOF15 start a frame, but C4 (DHT), C8 (JPG) and CC (DAC) share the range.
bool IsStartOfFrame(uint8_t marker) {
  return marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
}

absl::StatusOr<ImageHeader> ReadJpegHeader(std::string_view bytes) {
  const size_t n = bytes.size();
  // Every pass moves `pos` forward by at least one byte, so the walk ends
  // within n passes, whatever the segment lengths say.
  size_t pos = 2;
  while (true) {
    if (pos >= n) return Truncated("JPEG", "the markers up to the frame header (SOF)", pos + 2, n);
    if (Byte(bytes, pos) != 0xff) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "malformed JPEG header: expected a marker (0xff) at byte %d, found 0x%02x", pos, Byte(bytes, pos)));
    }
    const size_t marker_at = pos;
    while (pos < n && Byte(bytes, pos) == 0xff) ++pos;  // a marker may be preceded by fill bytes
    if (pos >= n) return Truncated("JPEG", "the markers up to the frame header (SOF)", pos + 1, n);
    const uint8_t marker = Byte(bytes, pos++);
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;  // TEM, RSTn: no length
    if (marker == 0xda || marker == 0xd9) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "malformed JPEG header: %s at byte %d, before any frame header (SOF0..SOF15) gives the size",
          marker == 0xda ? "a scan (SOS) starts" : "the image ends (EOI)", marker_at));
    }
    if (marker == 0x00 || marker == 0xd8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "malformed JPEG header: unexpected marker 0x%02x at byte %d, before the frame header (SOF)", marker,
          marker_at));
    }
    if (pos + 2 > n) return Truncated("JPEG", absl::StrFormat("the length of segment 0x%02x", marker), pos + 2, n);
    const size_t length = BigEndian16(bytes, pos);  // counts its own two bytes
    if (length < 2) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "malformed JPEG header: segment 0x%02x at byte %d declares a length of %d", marker, marker_at, length));
    }
    if (pos + length > n) {
      return Truncated("JPEG", absl::StrFormat("segment 0x%02x at byte %d", marker, marker_at), pos + length, n);
    }
    if (IsStartOfFrame(marker)) {
      // Length (2), sample precision (1), height (2), width (2), components (1).
      if (length < 8) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "malformed JPEG header: frame header 0x%02x at byte %d is %d bytes; it needs at least 8", marker,
            marker_at, length));
      }
      ImageHeader header{ImageFormat::kJpeg, BigEndian16(bytes, pos + 5), BigEndian16(bytes, pos + 3)};
      if (header.height == 0) {
        return absl::InvalidArgumentError(
            "unsupported JPEG: its frame header gives height 0 (the height follows the first scan, in a DNL "
            "marker), which cannot be checked before decoding");
      }
      if (header.width == 0) {
        return absl::InvalidArgumentError("malformed JPEG header: its frame header gives width 0");
      }
      return header;
    }
    pos += length;
  }
}

}  // namespace

std::string_view ImageFormatName(ImageFormat format) { return format == ImageFormat::kPng ? "PNG" : "JPEG"; }

absl::StatusOr<ImageHeader> ReadImageHeader(std::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("not a PNG or JPEG: the data is empty");
  const size_t sig = std::min(bytes.size(), kPngSignature.size());
  if (bytes.substr(0, sig) == kPngSignature.substr(0, sig)) {
    if (bytes.size() < kPngSignature.size()) return Truncated("PNG", "the signature", kPngSignature.size(), bytes.size());
    return ReadPngHeader(bytes);
  }
  if (bytes.size() == 1 && Byte(bytes, 0) == 0xff) return Truncated("JPEG", "the start of image (SOI)", 2, 1);
  if (bytes.substr(0, 2) == kJpegStart) return ReadJpegHeader(bytes);
  std::string message = absl::StrCat("not a PNG or JPEG: the first bytes are ", FirstBytes(bytes));
  if (const std::string_view other = OtherFormat(bytes); !other.empty()) absl::StrAppend(&message, ", ", std::string(other));
  absl::StrAppend(&message, "; a PNG starts with 89 50 4e 47, a JPEG with ff d8");
  return absl::InvalidArgumentError(message);
}

absl::Status CheckImagePixels(const ImageHeader& header, std::string_view what) {
  if (header.pixels() <= kMaxImagePixels) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(std::string(what), " declares ", header.width, "x", header.height, " pixels (",
                                                 header.pixels(), "); an image may have at most ",
                                                 DescribePixelLimit()));
}

absl::StatusOr<ImageHeader> CheckImage(std::string_view bytes, std::string_view what) {
  absl::StatusOr<ImageHeader> header = ReadImageHeader(bytes);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": ", header.status().message()));
  }
  if (absl::Status s = CheckImagePixels(*header, what); !s.ok()) return s;
  return header;
}

}  // namespace stylesweep
