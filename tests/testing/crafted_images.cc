#include "tests/testing/crafted_images.h"

#include <array>

namespace stylesweep::testing {
namespace {

void AppendBigEndian(std::string& out, uint32_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

uint32_t Crc32(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
      t[n] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) crc = table[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace

std::string PngChunk(const std::string& type, const std::string& data) {
  std::string chunk;
  AppendBigEndian(chunk, static_cast<uint32_t>(data.size()), 4);
  chunk += type + data;
  AppendBigEndian(chunk, Crc32(type + data), 4);
  return chunk;
}

std::string PngDeclaring(uint32_t width, uint32_t height) {
  std::string ihdr;
  AppendBigEndian(ihdr, width, 4);
  AppendBigEndian(ihdr, height, 4);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  return std::string("\x89PNG\r\n\x1a\n", 8) + PngChunk("IHDR", ihdr) + PngChunk("IDAT", "") + PngChunk("IEND", "");
}

std::string JpegSegment(uint8_t marker, const std::string& payload) {
  std::string segment{'\xff', static_cast<char>(marker)};
  AppendBigEndian(segment, static_cast<uint32_t>(payload.size() + 2), 2);
  return segment + payload;
}

std::string JpegDeclaring(uint16_t width, uint16_t height, const std::vector<std::string>& segments, uint8_t sof) {
  std::string jpeg("\xff\xd8", 2);
  for (const std::string& segment : segments) jpeg += segment;
  std::string frame{'\x08'};  // 8-bit samples
  AppendBigEndian(frame, height, 2);
  AppendBigEndian(frame, width, 2);
  frame += std::string("\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);  // Y (2x2), Cb, Cr
  return jpeg + JpegSegment(sof, frame) + std::string("\xff\xd9", 2);
}

}  // namespace stylesweep::testing
