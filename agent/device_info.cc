#include "agent/device_info.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stylesweep {
namespace {

DeviceInfo DescribeCpu() {
  DeviceInfo info{"CPU", 0};
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) info.name = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      break;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) info.memory_bytes = static_cast<int64_t>(pages) * page_size;
  return info;
}

DeviceInfo DescribeCuda(const std::string& index) {
  DeviceInfo info{absl::StrCat("CUDA device ", index), 0};
  int n = 0;
  if (!absl::SimpleAtoi(index, &n) || n < 0) return info;
  const std::string command = absl::StrCat(
      "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits -i ", n, " 2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return info;
  std::array<char, 512> buf{};
  if (fgets(buf.data(), buf.size(), pipe.get()) == nullptr) return info;
  // "NVIDIA H200, 143771"
  std::vector<std::string> fields = absl::StrSplit(std::string(buf.data()), ',');
  if (fields.size() != 2) return info;
  info.name = std::string(absl::StripAsciiWhitespace(fields[0]));
  int64_t mib = 0;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(fields[1]), &mib)) info.memory_bytes = mib * 1024 * 1024;
  return info;
}

}  // namespace

DeviceInfo DescribeDevice(const std::string& device) {
  if (absl::StartsWith(device, "cuda")) {
    const size_t colon = device.find(':');
    return DescribeCuda(colon == std::string::npos ? "0" : device.substr(colon + 1));
  }
  return DescribeCpu();
}

}  // namespace stylesweep
