#ifndef STYLESWEEP_TESTS_TESTING_CRAFTED_IMAGES_H_
#define STYLESWEEP_TESTS_TESTING_CRAFTED_IMAGES_H_

// Image bytes made to order for tests of what reads image headers: a header
// can declare any size, whatever (little) follows it.

#include <cstdint>
#include <string>
#include <vector>

namespace stylesweep::testing {

// One PNG chunk: length, `type`, `data` and their CRC-32.
std::string PngChunk(const std::string& type, const std::string& data);

// A PNG's signature and IHDR (8-bit RGB, correct CRC) declaring `width` x
// `height`, then an empty IDAT and IEND: a PNG by its header, a few dozen
// bytes long, which no decoder can fill.
std::string PngDeclaring(uint32_t width, uint32_t height);

// A JPEG's SOI, then `segments` (each a whole marker segment, e.g. from
// JpegSegment), then a frame header `sof` (0xc0 baseline, 0xc2 progressive)
// declaring `width` x `height` with three components, then EOI.
std::string JpegDeclaring(uint16_t width, uint16_t height, const std::vector<std::string>& segments = {},
                          uint8_t sof = 0xc0);

// One marker segment: 0xff, `marker`, the length (2 + payload), `payload`.
std::string JpegSegment(uint8_t marker, const std::string& payload);

}  // namespace stylesweep::testing

#endif  // STYLESWEEP_TESTS_TESTING_CRAFTED_IMAGES_H_
