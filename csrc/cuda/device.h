// One CUDA device as metalrt uses it: its primary context (the one PyTorch's runtime API uses,
// so tensors, streams and our modules all live in one context), its limits, the stream a launch
// goes on, and the errors a launch or a wait can report.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda/api.h"

namespace metalrt::cuda {

// The stream launches and timers use, asked at each launch: the bindings install one that
// returns PyTorch's current stream for the device (torch.cuda.current_stream()), so metalrt's
// kernels are ordered with PyTorch's own work. Without one, the legacy default stream (0), which
// is also PyTorch's default stream.
using StreamProvider = CUstream (*)(int ordinal);
void set_stream_provider(StreamProvider provider);

class Device {
 public:
  // The device with this ordinal, its primary context retained on first use (and never
  // released: PyTorch keeps it too). Throws BackendUnavailable (no driver, no such device).
  static Device& get(int ordinal);
  static int count();  // 0 when the driver has no device; throws BackendUnavailable without a driver

  const DriverApi& api() const { return api_; }
  int ordinal() const { return ordinal_; }
  CUcontext context() const { return context_; }
  int arch() const { return arch_; }              // compute capability as 10 * major + minor: 90
  std::string arch_name() const { return "sm_" + std::to_string(arch_); }
  const DeviceInfo& info() const { return info_; }
  uint32_t max_block_dim(int axis) const { return max_block_dim_[axis]; }
  uint64_t max_grid_dim(int axis) const { return max_grid_dim_[axis]; }
  uint64_t shared_memory_default() const { return shared_default_; }  // without the opt-in attribute
  uint64_t shared_memory_optin() const { return shared_optin_; }       // static + dynamic, opted in

  // Makes the primary context current on the calling thread if it is not (one thread-local read
  // when it already is: the launch path calls this every time).
  void make_current() const;
  CUstream current_stream() const;

  // Waits for all work on the device (every stream), and reports a kernel that faulted.
  void synchronize();

  // Throws LaunchError for a failed call. `what` says what was being done; a sticky error from a
  // kernel that faulted earlier names the last kernel metalrt launched.
  void check(CUresult result, const std::string& what) const;

  // Kernels register their names once; a launch records the id (one relaxed store), so an
  // asynchronous fault reported later can name the kernel that ran last.
  uint32_t register_kernel(const std::string& name);
  void note_launch(uint32_t kernel_id) { last_launch_.store(kernel_id, std::memory_order_relaxed); }
  std::string last_kernel() const;

 private:
  Device(int ordinal);
  const DriverApi& api_;
  int ordinal_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  int arch_ = 0;
  DeviceInfo info_;
  uint32_t max_block_dim_[3] = {1024, 1024, 64};
  uint64_t max_grid_dim_[3] = {2147483647, 65535, 65535};
  uint64_t shared_default_ = 49152, shared_optin_ = 49152;

  mutable std::mutex names_mutex_;
  std::vector<std::string> kernel_names_;  // by kernel id; only grows (names are short)
  std::atomic<uint32_t> last_launch_{UINT32_MAX};
};

}  // namespace metalrt::cuda
