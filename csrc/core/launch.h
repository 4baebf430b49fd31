// Launch geometry, one vocabulary for every backend:
//   threads=N or (x, y[, z])   total threads per dimension (Metal dispatchThreads; the edge
//                              threadgroups are partial, as on Apple GPUs; on CUDA the grid is
//                              rounded up and the kernel checks its own bounds)
//   groups=(x, y, z)           number of threadgroups (dispatchThreadgroups / CUDA grid)
//   group_size=(x, y, z)       threads per threadgroup; defaults below
//   threadgroup_memory={i: n}  bytes for each [[threadgroup(i)]] parameter (CUDA: index 0 is
//                              the dynamic shared memory size)
// Limits are checked here, before anything is encoded, with both numbers in the message.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace metalrt {

struct Dim3 {
  uint64_t x = 1, y = 1, z = 1;
  uint64_t count() const { return x * y * z; }
  bool operator==(const Dim3& o) const { return x == o.x && y == o.y && z == o.z; }
};

struct LaunchRequest {
  std::optional<Dim3> threads;
  std::optional<Dim3> groups;
  std::optional<Dim3> group_size;
  int dims = 1;                            // how many dimensions the caller gave (1..3)
  std::map<int, uint64_t> threadgroup_memory;
};

struct KernelLimits {
  uint32_t max_threads_per_group = 1024;   // the pipeline's own maximum (Metal can be < 1024)
  uint32_t simd_width = 32;
  uint64_t max_threadgroup_memory = 32768; // bytes, static + dynamic
  uint64_t static_threadgroup_memory = 0;  // bytes declared inside the kernel, if known
  uint64_t max_grid[3] = {UINT32_MAX, 65535, 65535};  // groups per dimension (CUDA's limits)
};

struct LaunchGeometry {
  bool dispatch_threads = true;  // true: `threads` is exact and edge groups are partial
  Dim3 threads;                  // total threads (for dispatch_threads) = groups * group_size otherwise
  Dim3 groups;                   // ceil(threads / group_size) for dispatch_threads
  Dim3 group_size;
  std::map<int, uint64_t> threadgroup_memory;
};

// Default group size when none is given: for 1-D launches min(256, max_threads_per_group)
// rounded down to a multiple of the SIMD width and not above the thread count rounded up to the
// SIMD width; 2-D (16, 16); 3-D (8, 8, 4); each clamped to the limit. Throws LaunchError for an
// empty or contradictory request (both or neither of threads/groups), a zero dimension, a group
// above max_threads_per_group ("group_size (32, 64) = 2048 threads exceeds the pipeline's
// maximum of 1024 threads per threadgroup for kernel 'k'"), threadgroup memory above the limit,
// or a grid above max_grid.
LaunchGeometry resolve_launch(const LaunchRequest& request, const KernelLimits& limits,
                              const std::string& kernel_name);

}  // namespace metalrt
