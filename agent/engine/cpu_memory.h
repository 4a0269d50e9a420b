#ifndef STYLESWEEP_AGENT_ENGINE_CPU_MEMORY_H_
#define STYLESWEEP_AGENT_ENGINE_CPU_MEMORY_H_

#include <cstddef>
#include <cstdint>

namespace stylesweep {

// Every optimisation step allocates and frees the same large buffers
// (activations, their gradients, pooling indices): tens of megabytes each at
// 512 px. glibc serves blocks above 32 MB (and, after a trim, smaller ones)
// with fresh mmaps, so each step pays page faults and kernel zeroing for
// hundreds of megabytes; measured with the PyTorch loop, ~15k minor faults a
// step at 256 px and ~96k at 512 px.
//
// InstallCachingCpuAllocator() makes LibTorch's CPU tensors of 1 MiB and
// more come from a cache of freed blocks of the same size, so from the
// second step on a step allocates (almost) nothing. Smaller tensors use LibTorch's
// default allocator. Process-wide and idempotent; call before creating
// tensors that should use it (earlier tensors are unaffected and safe).
void InstallCachingCpuAllocator();

// Returns every cached (free) block to the system: between runs, and when a
// run changes image size, so that an idle agent holds no memory.
void ReleaseCachedCpuMemory();

struct CpuMemoryStats {
  uint64_t cached_bytes = 0;  // free blocks held for reuse
  uint64_t live_bytes = 0;    // large blocks in use by tensors
  uint64_t reuses = 0;        // large allocations served from the cache
  uint64_t fresh = 0;         // large allocations that went to the system
};
CpuMemoryStats GetCpuMemoryStats();

}  // namespace stylesweep

#endif  // STYLESWEEP_AGENT_ENGINE_CPU_MEMORY_H_
