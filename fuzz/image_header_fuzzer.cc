// Fuzzes ReadImageHeader, which every reader of images from outside (the
// CLI, the coordinator, the agent) consults before anything else: the input
// is the bytes of an image as submitted.
//
// Besides crashes, it checks the header's contract: a size it accepts is at
// least 1 x 1, and bytes after those it read change nothing (it reads the
// header, never the image data).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/image_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto header = stylesweep::ReadImageHeader(bytes);
  if (!header.ok()) return 0;
  if (header->width == 0 || header->height == 0) abort();
  (void)stylesweep::ImageFormatName(header->format);
  (void)stylesweep::CheckImagePixels(*header, "fuzz.img");
  const std::string longer = std::string(bytes) + std::string(64, '\xff');
  auto again = stylesweep::ReadImageHeader(longer);
  if (!again.ok() || again->format != header->format || again->width != header->width ||
      again->height != header->height) {
    abort();
  }
  return 0;
}
