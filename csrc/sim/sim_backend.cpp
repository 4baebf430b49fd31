#include "sim/sim_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <map>
#include <stdexcept>

#include "core/errors.h"
#include "sim/kernel.h"

namespace metalrt::sim {

namespace {

class SimLibrary final : public EagerLibrary {
 public:
  SimLibrary(std::shared_ptr<const LoadedLibrary> library, const ParsedSource& parsed) {
    structs_ = parsed.structs;
    const msim_library_info* info = library->info;
    for (const KernelSignature& sig : parsed.kernels) {
      const msim_kernel_desc* desc = nullptr;
      for (uint32_t i = 0; i < info->nkernels && !desc; ++i)
        if (info->kernels[i].host_name && sig.name == info->kernels[i].host_name) desc = &info->kernels[i];
      if (!desc)
        throw CompileError("[metalrt.sim] the compiled library " + library->path + " has no entry for kernel '" +
                           sig.name + "' (a bug in the sim's front end)");
      if (desc->nparams != sig.params.size())
        throw CompileError("[metalrt.sim] kernel '" + sig.name + "': the compiled entry takes " +
                           std::to_string(desc->nparams) + " parameters but the source declares " +
                           std::to_string(sig.params.size()) + " (a bug in the sim's front end)");
      add_kernel(sig.name, std::make_shared<SimKernel>(sig, library, desc));
    }
  }
};

class SimTimer final : public Timer {
 public:
  void start() override {
    start_ = Executor::instance().launch_nanoseconds();
    started_ = true;
    stopped_ = false;
  }
  void stop() override {
    if (!started_) throw Error("[metalrt.sim] timer.stop() called before timer.start()");
    stop_ = Executor::instance().launch_nanoseconds();
    stopped_ = true;
  }
  double elapsed_ms() override {
    if (!stopped_) throw Error("[metalrt.sim] timer.elapsed_ms() called before timer.stop()");
    return double(stop_ - start_) / 1e6;
  }
  std::string method() const override { return "cpu-clock (sim: not a performance measure)"; }

 private:
  uint64_t start_ = 0, stop_ = 0;
  bool started_ = false, stopped_ = false;
};

const char* target_arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "cpu";
#endif
}

}  // namespace

std::shared_ptr<Library> load_library(const std::string& path, const ParsedSource& parsed) {
  auto library = std::make_shared<LoadedLibrary>();
  library->path = path;
  // RTLD_LOCAL: each library keeps its own symbols (every one defines msim_set_current).
  library->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library->handle) {
    const char* why = dlerror();
    throw CompileError("[metalrt.sim] cannot load the compiled kernel library " + path + ": " +
                           (why ? why : "unknown error"),
                       why ? why : "");
  }
  using InfoFn = const msim_library_info* (*)();
  auto info_fn = reinterpret_cast<InfoFn>(dlsym(library->handle, "msim_library_info_get"));
  library->set_current = reinterpret_cast<void (*)(msim_thread*)>(dlsym(library->handle, "msim_set_current"));
  if (!info_fn || !library->set_current)
    throw CompileError("[metalrt.sim] " + path +
                       " is not a sim kernel library: it does not export msim_library_info_get and "
                       "msim_set_current");
  library->info = info_fn();
  if (!library->info || library->info->abi_version != MSIM_ABI_VERSION)
    throw CompileError("[metalrt.sim] " + path + " was built for executor ABI version " +
                       std::to_string(library->info ? library->info->abi_version : 0) +
                       ", but this runtime speaks version " + std::to_string(MSIM_ABI_VERSION) +
                       "; delete it (or the metalrt cache directory) so it is rebuilt");
  return std::make_shared<SimLibrary>(library, parsed);
}

DeviceInfo device_info() {
  DeviceInfo d;
  d.backend = "sim";
  const uint32_t workers = Executor::instance().worker_count();
  d.name = "sim (cpu, " + std::to_string(workers) + (workers == 1 ? " thread)" : " threads)");
  d.target = std::string("sim-") + target_arch();
  d.index = 0;
  d.max_threads_per_group = MSIM_MAX_THREADS_PER_GROUP;
  d.simd_width = MSIM_SIMD_WIDTH;
  d.max_threadgroup_memory = MSIM_MAX_THREADGROUP_MEMORY;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  d.memory_bytes = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  d.unified_memory = true;  // kernels read and write the tensors' own memory
  d.peak_bandwidth_gbs = 0;
  return d;
}

std::shared_ptr<Timer> make_timer() { return std::make_shared<SimTimer>(); }

uint32_t abi_version() { return MSIM_ABI_VERSION; }

ExecutorOptions executor_options() { return Executor::instance().options(); }

void set_executor_options(const ExecutorOptions& options) { Executor::instance().set_options(options); }

}  // namespace metalrt::sim
