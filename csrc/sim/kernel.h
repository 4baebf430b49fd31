// A kernel of a loaded sim library: metalrt::Kernel on top of the executor. launch() maps the
// bound arguments onto the ABI's regions by parameter position, runs every threadgroup, and,
// where the race check applies, runs the launch a second time in another thread order and
// compares.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "core/backend.h"
#include "metalrt_sim_abi.h"
#include "sim/launch_plan.h"

namespace metalrt::sim {

// A dlopen()ed kernel library; kernels keep it loaded.
struct LoadedLibrary {
  void* handle = nullptr;
  std::string path;
  const msim_library_info* info = nullptr;
  void (*set_current)(msim_thread*) = nullptr;
  ~LoadedLibrary();
};

class SimKernel final : public Kernel {
 public:
  SimKernel(KernelSignature signature, std::shared_ptr<const LoadedLibrary> library,
            const msim_kernel_desc* desc);

  KernelLimits limits() const override;
  BindPolicy bind_policy() const override;
  void launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) override;
  // Launches run to completion on the calling thread: the bindings release the GIL meanwhile.
  bool synchronous_launch() const override { return true; }

  uint32_t flags() const { return desc_->flags; }

 private:
  void build_plan(const std::vector<BoundArg>& args, const LaunchGeometry& geometry, LaunchPlan* plan) const;
  void run_pass(const LaunchPlan& plan, const char* note);
  std::string name_prefix() const;

  std::shared_ptr<const LoadedLibrary> library_;
  const msim_kernel_desc* desc_;
  // Threadgroup variables' bytes, learned from the launches so far (limits() reports it, so
  // resolve_launch can check static plus dynamic memory before a launch).
  std::atomic<uint64_t> static_threadgroup_bytes_{0};
};

}  // namespace metalrt::sim
