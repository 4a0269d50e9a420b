#include "common/image_header.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/limits.h"
#include "tests/testing/crafted_images.h"

namespace stylesweep {
namespace {

using ::testing::HasSubstr;
using testing::JpegDeclaring;
using testing::JpegSegment;
using testing::PngDeclaring;

std::string Message(const absl::StatusOr<ImageHeader>& header) { return std::string(header.status().message()); }

TEST(ImageHeaderTest, ReadsTheBundledImages) {
  auto png = ReadFileToString(std::string(STYLESWEEP_SOURCE_DIR) + "/configs/images/cat.png");
  ASSERT_TRUE(png.ok()) << png.status();
  auto header = ReadImageHeader(*png);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->format, ImageFormat::kPng);
  EXPECT_EQ(header->width, 256u);
  EXPECT_EQ(header->height, 170u);

  auto jpeg = ReadFileToString(std::string(STYLESWEEP_SOURCE_DIR) + "/configs/images/starry_night.jpg");
  ASSERT_TRUE(jpeg.ok()) << jpeg.status();
  header = ReadImageHeader(*jpeg);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->format, ImageFormat::kJpeg);
  EXPECT_EQ(header->width, 256u);
  EXPECT_EQ(header->height, 204u);
}

// The header alone gives the size: 57 bytes declaring 225 million pixels.
TEST(ImageHeaderTest, ATinyPngDeclaringAHugeImageIsReadAndOverTheLimit) {
  const std::string bomb = PngDeclaring(15000, 15000);
  EXPECT_LT(bomb.size(), 64u);
  auto header = ReadImageHeader(bomb);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 15000u);
  EXPECT_EQ(header->pixels(), 225000000u);
  absl::Status limit = CheckImagePixels(*header, "style image 'bomb.png'");
  EXPECT_TRUE(absl::IsInvalidArgument(limit));
  EXPECT_EQ(limit.message(),
            "style image 'bomb.png' declares 15000x15000 pixels (225000000); an image may have at most 64 Mi pixels "
            "(67108864, e.g. 8192x8192)");
}

TEST(ImageHeaderTest, ThePixelLimitIsInclusive) {
  EXPECT_TRUE(CheckImagePixels(*ReadImageHeader(PngDeclaring(8192, 8192)), "x").ok());
  EXPECT_TRUE(CheckImagePixels(*ReadImageHeader(PngDeclaring(65536, 1024)), "x").ok());
  EXPECT_FALSE(CheckImagePixels(*ReadImageHeader(PngDeclaring(8193, 8192)), "x").ok());
  // Sides that overflow 32 bits when multiplied.
  EXPECT_FALSE(CheckImagePixels(*ReadImageHeader(PngDeclaring(0x7fffffff, 0x7fffffff)), "x").ok());
  EXPECT_FALSE(CheckImagePixels(*ReadImageHeader(JpegDeclaring(65535, 65535)), "x").ok());
  EXPECT_TRUE(CheckImagePixels(*ReadImageHeader(JpegDeclaring(8192, 8192)), "x").ok());
}

TEST(ImageHeaderTest, TruncatedPngHeadersSaySo) {
  const std::string png = PngDeclaring(4, 3);
  for (size_t size : {1, 4, 7}) {
    auto header = ReadImageHeader(png.substr(0, size));
    ASSERT_FALSE(header.ok()) << size;
    EXPECT_EQ(Message(header), absl::StrCat("truncated PNG header: the signature needs 8 bytes, the data has ", size));
  }
  for (size_t size : {8, 16, 24, 32}) {
    auto header = ReadImageHeader(png.substr(0, size));
    ASSERT_FALSE(header.ok()) << size;
    EXPECT_EQ(Message(header),
              absl::StrCat("truncated PNG header: the signature and IHDR chunk needs 33 bytes, the data has ", size));
  }
  EXPECT_TRUE(ReadImageHeader(png.substr(0, 33)).ok());
}

TEST(ImageHeaderTest, MalformedPngHeadersAreRefused) {
  std::string idat_first = PngDeclaring(4, 3);
  idat_first.replace(12, 4, "IDAT");
  EXPECT_EQ(Message(ReadImageHeader(idat_first)),
            "malformed PNG header: the first chunk must be IHDR of 13 bytes, found 'IDAT' of 13 bytes");

  std::string zero_width = PngDeclaring(0, 3);
  EXPECT_EQ(Message(ReadImageHeader(zero_width)),
            "malformed PNG header: IHDR declares 0x3 pixels; each side must be 1 to 2147483647");
  EXPECT_FALSE(ReadImageHeader(PngDeclaring(4, 0x80000000u)).ok());

  std::string depth = PngDeclaring(4, 3);
  depth[24] = 7;
  EXPECT_THAT(Message(ReadImageHeader(depth)), HasSubstr("bit depth 7"));
}

TEST(ImageHeaderTest, JpegFrameHeaderIsFoundAfterOtherSegments) {
  // APP0 (JFIF), APP1 (Exif, 60 KB), a comment, quantisation and Huffman
  // tables (0xc4 is DHT, not a frame), then a progressive frame (SOF2).
  const std::vector<std::string> segments = {
      JpegSegment(0xe0, std::string("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 14)),
      JpegSegment(0xe1, std::string("Exif\0\0", 6) + std::string(60000, 'x')),
      JpegSegment(0xfe, "made by hand"),
      JpegSegment(0xdb, std::string(65, '\x01')),
      JpegSegment(0xc4, std::string(30, '\x02')),
  };
  auto header = ReadImageHeader(JpegDeclaring(640, 480, segments, 0xc2));
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->format, ImageFormat::kJpeg);
  EXPECT_EQ(header->width, 640u);
  EXPECT_EQ(header->height, 480u);

  // Fill bytes before a marker are allowed.
  std::string filled = JpegDeclaring(5, 6);
  filled.insert(2, "\xff\xff\xff");
  header = ReadImageHeader(filled);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->width, 5u);
}

TEST(ImageHeaderTest, JpegTablesAreNotFrames) {
  // DHT (c4), JPG (c8) and DAC (cc) lie in the SOF range; their bytes must
  // not be read as a size.
  for (uint8_t marker : {0xc4, 0xc8, 0xcc}) {
    const std::string table = JpegSegment(marker, std::string("\x08\xff\xff\xff\xff\x03", 6));
    auto header = ReadImageHeader(JpegDeclaring(7, 9, {table}));
    ASSERT_TRUE(header.ok()) << header.status();
    EXPECT_EQ(header->width, 7u) << int{marker};
    EXPECT_EQ(header->height, 9u) << int{marker};
  }
}

TEST(ImageHeaderTest, BrokenJpegsAreRefusedWithinTheirBytes) {
  const std::string jpeg = JpegDeclaring(640, 480, {JpegSegment(0xe0, std::string(14, 'j'))});
  // Cut anywhere before the frame header ends: truncated.
  for (size_t size = 1; size < jpeg.size() - 2; ++size) {
    auto header = ReadImageHeader(jpeg.substr(0, size));
    ASSERT_FALSE(header.ok()) << size;
    EXPECT_THAT(Message(header), HasSubstr("truncated JPEG header")) << size;
  }
  // A segment whose length runs past the end.
  std::string overlong = jpeg;
  overlong[4] = '\x7f';
  EXPECT_THAT(Message(ReadImageHeader(overlong)),
              HasSubstr("truncated JPEG header: segment 0xe0 at byte 2 needs 32532 bytes, the data has"));
  // A length below its own two bytes.
  std::string short_length = jpeg;
  short_length[4] = '\0';
  short_length[5] = '\x01';
  EXPECT_EQ(Message(ReadImageHeader(short_length)),
            "malformed JPEG header: segment 0xe0 at byte 2 declares a length of 1");
  // A scan before any frame header.
  EXPECT_EQ(Message(ReadImageHeader(std::string("\xff\xd8\xff\xda\x00\x02", 6))),
            "malformed JPEG header: a scan (SOS) starts at byte 2, before any frame header (SOF0..SOF15) gives the "
            "size");
  EXPECT_THAT(Message(ReadImageHeader(std::string("\xff\xd8\xff\xd9", 4))), HasSubstr("the image ends (EOI)"));
  // Something other than a marker where one belongs.
  EXPECT_EQ(Message(ReadImageHeader(std::string("\xff\xd8GARBAGE", 9))),
            "malformed JPEG header: expected a marker (0xff) at byte 2, found 0x47");
  // A frame header too short to hold a size, and height 0 (DNL).
  EXPECT_THAT(Message(ReadImageHeader(std::string("\xff\xd8") + JpegSegment(0xc0, "\x08\x01"))),
              HasSubstr("frame header 0xc0 at byte 2 is 4 bytes; it needs at least 8"));
  EXPECT_THAT(Message(ReadImageHeader(JpegDeclaring(640, 0))), HasSubstr("height 0"));
  EXPECT_THAT(Message(ReadImageHeader(JpegDeclaring(0, 480))), HasSubstr("width 0"));
}

TEST(ImageHeaderTest, OtherBytesAreNotImages) {
  EXPECT_EQ(Message(ReadImageHeader("")), "not a PNG or JPEG: the data is empty");
  EXPECT_EQ(Message(ReadImageHeader("root:x:0:0:root:/root:/bin/bash\n")),
            "not a PNG or JPEG: the first bytes are 72 6f 6f 74 3a 78 3a 30 (\"root:x:0\"); a PNG starts with 89 50 "
            "4e 47, a JPEG with ff d8");
  EXPECT_EQ(Message(ReadImageHeader(std::string("GIF89a\x01\x00\x01\x00", 10))),
            "not a PNG or JPEG: the first bytes are 47 49 46 38 39 61 01 00 (\"GIF89a..\"), a GIF image; a PNG starts "
            "with 89 50 4e 47, a JPEG with ff d8");
  EXPECT_THAT(Message(ReadImageHeader(std::string(4096, '\0'))), HasSubstr("00 00 00 00 00 00 00 00 (\"........\")"));
  // A PNG signature off by one byte is not a PNG.
  std::string off = PngDeclaring(4, 3);
  off[7] = '\r';
  EXPECT_THAT(Message(ReadImageHeader(off)), HasSubstr("not a PNG or JPEG"));
  for (const std::string& bytes : {std::string("\xff", 1), std::string("\x89", 1)}) {
    EXPECT_THAT(Message(ReadImageHeader(bytes)), HasSubstr("truncated"));
  }
}

}  // namespace
}  // namespace stylesweep
