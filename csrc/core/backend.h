// The one interface every backend implements (sim, CUDA, Metal), with the same parts in the
// same order: device, library (compiled source), kernel (launchable entry), timer.
// Compilation itself is backend-specific (the sim compiles through its Python front end and a
// host compiler, CUDA through NVRTC, Metal through MTLDevice) and is not part of this interface;
// what it produces is a Library.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/binding.h"
#include "core/errors.h"
#include "core/launch.h"
#include "core/signature.h"

namespace metalrt {

struct DeviceInfo {
  std::string backend;                 // "sim", "cuda", "metal"
  std::string name;                    // "Apple M4 Max", "NVIDIA H100 80GB HBM3", "sim (cpu, 2 threads)"
  std::string target;                  // "sm_90", "apple9", "sim-x86_64"
  int index = 0;
  uint32_t max_threads_per_group = 1024;
  uint32_t simd_width = 32;
  uint64_t max_threadgroup_memory = 32768;
  uint64_t memory_bytes = 0;           // device memory (unified: recommended working set)
  bool unified_memory = false;
  double peak_bandwidth_gbs = 0;       // 0 when unknown; used by the speed-of-light guard
};

class Kernel {
 public:
  explicit Kernel(KernelSignature sig) : sig_(std::move(sig)) {}
  virtual ~Kernel() = default;
  const KernelSignature& signature() const { return sig_; }
  virtual KernelLimits limits() const = 0;
  virtual BindPolicy bind_policy() const = 0;
  // Encodes and submits (asynchronously where the backend is asynchronous).
  virtual void launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) = 0;
  // True when launch() runs the kernel to completion on the calling thread (the sim): the
  // bindings then release the GIL around it. Asynchronous backends keep it (encoding is cheap).
  virtual bool synchronous_launch() const { return false; }

 private:
  KernelSignature sig_;
};

class Library {
 public:
  virtual ~Library() = default;
  virtual std::vector<std::string> kernel_names() const = 0;
  // Throws ArgumentError for an unknown name, listing the kernels that exist.
  virtual std::shared_ptr<Kernel> kernel(const std::string& name) = 0;
  const std::map<std::string, StructLayout>& structs() const { return structs_; }

 protected:
  std::map<std::string, StructLayout> structs_;
};

// What every backend's Library::kernel() says of a name it lacks (Python's `lib.NAME` says the
// same), so a typo reads alike on the sim, CUDA and Metal.
[[noreturn]] inline void throw_unknown_kernel(const std::string& name, const std::vector<std::string>& known) {
  std::string list;
  for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
  throw ArgumentError("no kernel named '" + name + "' in this library; it has: " + (list.empty() ? "(none)" : list));
}

// A Library whose kernels are all made when it is loaded (the sim, CUDA, the recording double),
// kept in source order. Metal builds pipelines on first use and implements Library itself.
class EagerLibrary : public Library {
 public:
  std::vector<std::string> kernel_names() const override { return names_; }
  std::shared_ptr<Kernel> kernel(const std::string& name) override {
    auto it = kernels_.find(name);
    if (it == kernels_.end()) throw_unknown_kernel(name, names_);
    return it->second;
  }

 protected:
  void add_kernel(const std::string& name, std::shared_ptr<Kernel> kernel) {
    names_.push_back(name);
    kernels_.emplace(name, std::move(kernel));
  }

 private:
  std::vector<std::string> names_;  // in source order
  std::map<std::string, std::shared_ptr<Kernel>> kernels_;
};

// Measures elapsed time of the work submitted between start() and stop() on the backend's
// queue/stream. `method()` says how: "cuda-events", "metal-gpu-timestamps",
// "metal-command-buffer", "cpu-clock (sim: not a performance measure)".
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual double elapsed_ms() = 0;  // waits for the stop point to complete
  virtual std::string method() const = 0;
};

}  // namespace metalrt
