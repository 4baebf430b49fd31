// The Metal backend as the bindings see it: plain C++, no Objective-C or Metal types, so
// csrc/bindings/metal.cpp (a .cpp with pybind11) can call it. Implemented by the .mm files in
// this folder, which are compiled on Apple platforms only (METALRT_WITH_METAL).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/metal_options.h"

namespace metalrt::metal {

struct BuildOptions {
  CompileRequest compile;                  // math, language version, defines
  std::vector<ConstantRequest> constants;  // compile(constants=...)
  std::string cache_dir;                   // where binary archives live; "" keeps them off
  std::string filename = "kernel.metal";   // what compile errors call the source
};

// Counters of what the caches did in this process; the tests and benchmarks read them.
struct BackendStats {
  uint64_t libraries_compiled = 0;   // newLibraryWithSource calls
  uint64_t pipelines_created = 0;    // pipeline states made (hits included)
  uint64_t pipeline_cache_hits = 0;  // in-memory cache hits
  uint64_t archive_hits = 0;         // pipelines found in a binary archive (no backend compile)
  uint64_t archive_misses = 0;       // pipelines the backend compiler built (not in an archive)
  uint64_t archives_rebuilt = 0;     // archives on disk found unusable and started afresh
  uint64_t archive_write_failures = 0;
  std::string last_archive_event;    // e.g. "rebuild: the archive's bytes do not match ..."
};

// None of these throw for a missing device except where noted; the first use of the device picks
// it (METALRT_METAL_DEVICE, else the system default).
std::string unavailable_reason();        // "" when a Metal device is usable
std::vector<std::string> device_names();
DeviceInfo device_info();                // throws BackendUnavailable without a device
DeviceIdentity device_identity();        // what enters cache keys
OsVersion os_version();
std::string timing_method();             // Timer::method() of this device's timers

// Compiles `source` (newLibraryWithSource) into a Library whose kernels make their pipelines on
// first use. Throws CompileError (with the compiler's log) or ArgumentError (options, constants).
std::shared_ptr<Library> build(const std::string& source, const BuildOptions& options);

// Waits until every launch metalrt submitted has completed.
void synchronize();

std::shared_ptr<Timer> make_timer();

// Called before a launch that binds an MPS tensor, to finish the work PyTorch has queued on its
// own MPS stream (the bindings pass torch.mps.synchronize). metalrt's queue and PyTorch's are
// distinct; this, and waiting for each launch to complete, is what orders the two.
void set_external_sync(std::function<void()> fn);

BackendStats stats();
void clear_pipeline_cache();  // drops in-memory pipelines (the next use reads the archive)

// For metalrt.profile(): whether `kernel` is a Metal kernel, and the GPU time of the last launch
// the calling thread completed (its command buffer's GPUEndTime - GPUStartTime, in ms).
bool is_metal_kernel(const Kernel& kernel);
double last_launch_gpu_ms();

}  // namespace metalrt::metal
