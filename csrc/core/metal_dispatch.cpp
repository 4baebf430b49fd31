#include "core/metal_dispatch.h"

#include "core/errors.h"

namespace metalrt::metal {
namespace {

std::string dims(const Dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

uint64_t round_up(uint64_t n, uint64_t granule) { return (n + granule - 1) / granule * granule; }

}  // namespace

DispatchPlan plan_dispatch(const LaunchGeometry& geometry,
                           const std::map<int, uint64_t>& threadgroup_bytes,
                           const DispatchLimits& limits, const std::string& kernel) {
  const std::string who = "[metalrt.metal] kernel '" + kernel + "': ";
  DispatchPlan plan;
  plan.group_size = geometry.group_size;
  if (plan.group_size.count() == 0)
    throw LaunchError(who + "group_size " + dims(plan.group_size) + " has a zero dimension");
  if (plan.group_size.count() > limits.max_threads_per_group)
    throw LaunchError(who + "group_size " + dims(plan.group_size) + " = " +
                      std::to_string(plan.group_size.count()) + " threads exceeds the pipeline's "
                      "maximum of " + std::to_string(limits.max_threads_per_group) +
                      " threads per threadgroup (maxTotalThreadsPerThreadgroup; it depends on the "
                      "kernel's register use); pass a smaller group_size");

  const Dim3 total = geometry.dispatch_threads
                         ? geometry.threads
                         : Dim3{geometry.groups.x * plan.group_size.x,
                                geometry.groups.y * plan.group_size.y,
                                geometry.groups.z * plan.group_size.z};
  for (uint64_t n : {total.x, total.y, total.z})
    if (n > 0xFFFFFFFFull)
      throw LaunchError(who + "the grid " + dims(total) + " has a dimension above 2^32-1 threads, "
                        "which Metal cannot dispatch; split the work over several launches");

  if (geometry.dispatch_threads) {
    plan.grid = geometry.threads;
    const Dim3& g = plan.group_size;
    bool uniform = total.x % g.x == 0 && total.y % g.y == 0 && total.z % g.z == 0;
    if (!limits.nonuniform_threadgroups) {
      if (!uniform)
        throw LaunchError(who + "threads=" + dims(total) + " is not a multiple of group_size " +
                          dims(g) + ", and this GPU has no non-uniform threadgroups "
                          "(dispatchThreads); launch with groups= and check bounds in the kernel");
      plan.dispatch_threads = false;
      plan.grid = {total.x / g.x, total.y / g.y, total.z / g.z};
    }
  } else {
    plan.dispatch_threads = false;
    plan.grid = geometry.groups;
  }

  uint64_t used = limits.static_threadgroup_memory;
  for (const auto& [index, bytes] : threadgroup_bytes) {
    if (index < 0)
      throw LaunchError(who + "threadgroup_memory index " + std::to_string(index) + " is negative");
    uint64_t length = round_up(bytes, kThreadgroupMemoryGranule);
    plan.threadgroup_lengths.emplace_back(index, length);
    used += length;
  }
  if (used > limits.max_threadgroup_memory) {
    std::string parts = std::to_string(limits.static_threadgroup_memory) + " bytes declared in the kernel";
    for (const auto& [index, length] : plan.threadgroup_lengths)
      parts += " + " + std::to_string(length) + " for [[threadgroup(" + std::to_string(index) + ")]]";
    throw LaunchError(who + "threadgroup memory " + std::to_string(used) + " bytes (" + parts +
                      ", each rounded up to 16) exceeds this GPU's maximum of " +
                      std::to_string(limits.max_threadgroup_memory) + " bytes; use smaller tiles");
  }
  return plan;
}

}  // namespace metalrt::metal
