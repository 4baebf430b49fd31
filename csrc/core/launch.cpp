// Launch geometry: turns what the caller asked for (threads or groups, maybe a group size) into
// the numbers every backend encodes, and refuses, before anything is encoded, what the device
// would refuse or silently clamp.
#include "core/launch.h"

#include <algorithm>

#include "core/errors.h"

namespace metalrt {
namespace {

// "1024", "(32, 64)", "(8, 8, 4)": as many dimensions as the caller used.
std::string show(const Dim3& d, int dims) {
  if (dims <= 1) return std::to_string(d.x);
  std::string s = "(" + std::to_string(d.x) + ", " + std::to_string(d.y);
  if (dims >= 3) s += ", " + std::to_string(d.z);
  return s + ")";
}

[[noreturn]] void fail(const std::string& kernel, const std::string& message) {
  throw LaunchError("kernel '" + kernel + "': " + message);
}

Dim3 default_group_size(int dims, const KernelLimits& limits, const std::optional<Dim3>& threads) {
  uint64_t max = std::max<uint32_t>(limits.max_threads_per_group, 1);
  uint64_t simd = std::max<uint32_t>(limits.simd_width, 1);
  if (dims <= 1) {
    uint64_t g = std::min<uint64_t>(256, max);
    if (g >= simd) g = g / simd * simd;
    if (threads) g = std::min(g, (threads->x + simd - 1) / simd * simd);
    return Dim3{std::max<uint64_t>(g, 1), 1, 1};
  }
  Dim3 g = dims == 2 ? Dim3{16, 16, 1} : Dim3{8, 8, 4};
  // Halve the largest dimension until the group fits the pipeline's limit.
  while (g.count() > max) {
    uint64_t* biggest = &g.x;
    if (g.y > *biggest) biggest = &g.y;
    if (g.z > *biggest) biggest = &g.z;
    *biggest = std::max<uint64_t>(*biggest / 2, 1);
  }
  return g;
}

}  // namespace

LaunchGeometry resolve_launch(const LaunchRequest& request, const KernelLimits& limits,
                              const std::string& kernel_name) {
  if (request.threads && request.groups)
    fail(kernel_name, "give threads= (total threads) or groups= (number of threadgroups), not both");
  if (!request.threads && !request.groups)
    fail(kernel_name, "a launch needs threads= (total threads per dimension) or groups= (number of threadgroups)");
  int dims = std::clamp(request.dims, 1, 3);
  const Dim3& grid = request.threads ? *request.threads : *request.groups;
  const char* grid_name = request.threads ? "threads" : "groups";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    fail(kernel_name, std::string(grid_name) + "=" + show(grid, dims) +
                          " has a zero dimension; a launch needs at least one thread in each dimension");

  LaunchGeometry g;
  g.group_size = request.group_size ? *request.group_size : default_group_size(dims, limits, request.threads);
  const Dim3& gs = g.group_size;
  int gdims = request.group_size ? std::max(dims, gs.z > 1 ? 3 : gs.y > 1 ? 2 : 1) : dims;
  if (gs.x == 0 || gs.y == 0 || gs.z == 0)
    fail(kernel_name, "group_size=" + show(gs, gdims) + " has a zero dimension");
  if (gs.count() > limits.max_threads_per_group)
    fail(kernel_name, "group_size " + show(gs, gdims) + (gdims > 1 ? " = " + std::to_string(gs.count()) + " threads" : " threads") +
                          " exceeds the pipeline's maximum of " + std::to_string(limits.max_threads_per_group) +
                          " threads per threadgroup");

  if (request.threads) {
    g.dispatch_threads = true;
    g.threads = grid;
    g.groups = Dim3{(grid.x + gs.x - 1) / gs.x, (grid.y + gs.y - 1) / gs.y, (grid.z + gs.z - 1) / gs.z};
  } else {
    g.dispatch_threads = false;
    g.groups = grid;
    g.threads = Dim3{grid.x * gs.x, grid.y * gs.y, grid.z * gs.z};
  }
  const uint64_t* group_counts[3] = {&g.groups.x, &g.groups.y, &g.groups.z};
  const uint64_t* thread_counts[3] = {&g.threads.x, &g.threads.y, &g.threads.z};
  const uint64_t* sizes[3] = {&gs.x, &gs.y, &gs.z};
  for (int d = 0; d < 3; ++d) {
    const char* axis = "xyz" + d;
    if (*group_counts[d] > limits.max_grid[d])
      fail(kernel_name, std::to_string(*group_counts[d]) + " threadgroups along " + std::string(axis, 1) +
                            " exceed the device's limit of " + std::to_string(limits.max_grid[d]) +
                            "; use larger groups or fewer threads");
    // Grids are encoded with 32-bit counts; also catches groups * group_size overflowing.
    if (*thread_counts[d] > UINT32_MAX || (*group_counts[d] && *thread_counts[d] / *group_counts[d] > *sizes[d]))
      fail(kernel_name, std::string("the grid has more than 2^32 - 1 threads along ") + std::string(axis, 1));
  }

  uint64_t requested = 0;
  for (const auto& [index, bytes] : request.threadgroup_memory) requested += bytes;
  uint64_t total = requested + limits.static_threadgroup_memory;
  if (total > limits.max_threadgroup_memory) {
    std::string parts = limits.static_threadgroup_memory
                            ? " (" + std::to_string(limits.static_threadgroup_memory) + " declared in the kernel + " +
                                  std::to_string(requested) + " requested)"
                            : "";
    fail(kernel_name, "threadgroup memory of " + std::to_string(total) + " bytes" + parts + " exceeds the limit of " +
                          std::to_string(limits.max_threadgroup_memory) + " bytes per threadgroup");
  }
  g.threadgroup_memory = request.threadgroup_memory;
  return g;
}

}  // namespace metalrt
