// A loaded module (cubin or PTX) and its kernels.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "core/backend.h"
#include "cuda/device.h"

namespace metalrt::cuda {

// A CUmodule, unloaded when the last kernel that uses it is gone.
class Module {
 public:
  Module(Device& device, CUmodule handle) : device_(device), handle_(handle) {}
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  CUmodule handle() const { return handle_; }
  Device& device() const { return device_; }

 private:
  Device& device_;
  CUmodule handle_;
};

class CudaKernel final : public Kernel {
 public:
  // `symbol` is the function's name in the module (the lowered name for C++ kernels).
  CudaKernel(KernelSignature sig, std::shared_ptr<Module> module, const std::string& symbol);

  KernelLimits limits() const override { return limits_; }
  BindPolicy bind_policy() const override { return policy_; }
  // Enqueues on the current stream (PyTorch's, see device.h) and returns: CUDA launches are
  // asynchronous. A fault while the kernel runs is reported by the next synchronising call.
  void launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) override;

  int registers() const { return registers_; }

 private:
  std::shared_ptr<Module> module_;
  Device& device_;
  CUfunction function_ = nullptr;
  KernelLimits limits_;
  BindPolicy policy_;
  int registers_ = 0;
  uint32_t id_ = 0;                 // the device's kernel id, for fault messages
  std::atomic<uint64_t> dynamic_shared_ok_{0};  // dynamic shared memory the function is opted in to
};

}  // namespace metalrt::cuda
