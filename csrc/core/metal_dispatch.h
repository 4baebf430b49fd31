// From a resolved LaunchGeometry to the calls a compute encoder makes: dispatchThreads (exact
// thread counts, partial edge threadgroups) or dispatchThreadgroups, and the threadgroup memory
// lengths. Metal wants each setThreadgroupMemoryLength a multiple of 16 bytes, and the lengths
// plus the kernel's own threadgroup arrays within the device's maximum; both are decided here,
// before anything is encoded, so a bad launch is a LaunchError and never a GPU fault.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/launch.h"

namespace metalrt::metal {

struct DispatchLimits {
  // Non-uniform threadgroups (what dispatchThreads needs): every Apple GPU family from Apple4
  // and Mac2, so every Mac that runs macOS 14. False only on a device that lacks them.
  bool nonuniform_threadgroups = true;
  uint32_t max_threads_per_group = 1024;    // pipeline.maxTotalThreadsPerThreadgroup
  uint64_t max_threadgroup_memory = 32768;  // device.maxThreadgroupMemoryLength
  uint64_t static_threadgroup_memory = 0;   // pipeline.staticThreadgroupMemoryLength
};

struct DispatchPlan {
  bool dispatch_threads = true;  // true: dispatchThreads(grid, group); false: dispatchThreadgroups
  Dim3 grid;                     // threads per grid, or threadgroups per grid
  Dim3 group_size;
  std::vector<std::pair<int, uint64_t>> threadgroup_lengths;  // (index, bytes rounded up to 16)
};

inline constexpr uint64_t kThreadgroupMemoryGranule = 16;

// `threadgroup_bytes`: bytes requested per [[threadgroup(i)]] index. Throws LaunchError, naming
// the kernel and both numbers, for a group above the pipeline's maximum, threadgroup memory above
// the device's, a grid dimension above 2^32-1 threads, or a threads= launch whose size is not a
// multiple of the group on a device without non-uniform threadgroups.
DispatchPlan plan_dispatch(const LaunchGeometry& geometry,
                           const std::map<int, uint64_t>& threadgroup_bytes,
                           const DispatchLimits& limits, const std::string& kernel);

}  // namespace metalrt::metal
