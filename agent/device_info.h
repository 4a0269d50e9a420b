#ifndef STYLESWEEP_AGENT_DEVICE_INFO_H_
#define STYLESWEEP_AGENT_DEVICE_INFO_H_

#include <cstdint>
#include <string>

namespace stylesweep {

// What an agent tells the coordinator about its device at registration, so
// that `stylesweep agents` shows which machine holds which hardware.
struct DeviceInfo {
  std::string name;          // "NVIDIA H200", or the CPU's model name
  int64_t memory_bytes = 0;  // the GPU's memory, or the machine's RAM; 0: unknown
};

// Best effort, never fails: "cpu" reads /proc/cpuinfo and the machine's
// physical memory; "cuda:N" asks nvidia-smi (LibTorch's C++ API has no
// portable way to read device properties) and falls back to "CUDA device N".
DeviceInfo DescribeDevice(const std::string& device);

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_DEVICE_INFO_H_
