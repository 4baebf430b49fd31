// What every threadgroup of one launch shares: the kernel, the memory bound to its parameters,
// the geometry, and how this pass runs (thread order and poison pattern, which the race check
// varies between its two passes). Built once per launch by the kernel (sim_library.cpp) and
// read, never written, by every worker while the groups run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "metalrt_sim_abi.h"

namespace metalrt::sim {

enum class ThreadOrder : uint8_t {
  Forward,  // thread 0 first; the resolved lanes of a SIMD-group resume lowest lane first
  Reverse,  // the last thread first; highest lane first
};

struct LaunchPlan {
  const msim_kernel_desc* kernel = nullptr;
  void (*set_current)(msim_thread*) = nullptr;  // the library's msim_set_current
  std::string kernel_name;

  msim_launch abi{};              // abi.args points into `args`
  std::vector<msim_region> args;  // by parameter position, builtins UNUSED

  // [[threadgroup(i)]] parameters: each group gets `bytes` (rounded up to 16) of fresh,
  // poisoned memory per parameter.
  struct ThreadgroupParam {
    uint32_t position;
    uint64_t bytes;
  };
  std::vector<ThreadgroupParam> threadgroup_params;
  uint64_t dynamic_threadgroup_bytes = 0;  // their total, after rounding

  bool uses_fibers = false;       // the kernel synchronises: one fiber per GPU thread
  ThreadOrder order = ThreadOrder::Forward;
  uint8_t poison = 0xff;          // fill byte of fresh threadgroup memory (0xff: NaN, -1)

  uint64_t group_count() const {
    return uint64_t(abi.threadgroups_per_grid[0]) * abi.threadgroups_per_grid[1] *
           abi.threadgroups_per_grid[2];
  }
};

// Why a group failed: the complete message, starting with the kernel's name.
struct GroupFailure {
  uint64_t group = 0;
  std::string message;
};

}  // namespace metalrt::sim
