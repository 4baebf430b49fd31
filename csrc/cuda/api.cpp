// Finding and opening libcuda and libnvrtc. Both are opened once per process and never closed:
// PyTorch opens the same files, and the loader then hands both of us the same driver instance
// (and so the same primary context).
#include "cuda/api.h"

#include <dirent.h>
#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <mutex>
#include <optional>

#include "core/errors.h"

namespace metalrt::cuda {
namespace {

// NVRTC sonames, newest first. Any major from 12 on works (older ones lack what we use).
constexpr const char* kNvrtcNames[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// The file the loader actually opened for `handle` (a bare soname resolves through the ld.so
// cache); the toolkit headers that match an NVRTC are found relative to it.
std::string real_path(void* handle, const std::string& fallback) {
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0]) return map->l_name;
  return fallback;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Resolves every field of `table` (an array of function pointers in declaration order) from
// `names`. Returns the first missing symbol, or "" when all were found.
template <class Table, size_t N>
std::string resolve(void* handle, const char* const (&names)[N], Table* table) {
  static_assert(sizeof(Table) == N * sizeof(void*), "one symbol name per function pointer");
  void** slots = reinterpret_cast<void**>(table);
  for (size_t k = 0; k < N; ++k) {
    slots[k] = dlsym(handle, names[k]);
    if (!slots[k]) return names[k];
  }
  return {};
}

// The symbols behind DriverApi's fields, in the same order. The _v2 names are the ones cuda.h's
// macros select for these functions since CUDA 4; the unversioned others are still exported by
// every driver from 525 (CUDA 12.0) on.
constexpr const char* kDriverSymbols[] = {
    "cuInit", "cuDriverGetVersion", "cuGetErrorName", "cuGetErrorString", "cuDeviceGetCount", "cuDeviceGet",
    "cuDeviceGetName", "cuDeviceGetAttribute", "cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRetain",
    "cuCtxGetCurrent", "cuCtxSetCurrent", "cuCtxSynchronize", "cuModuleLoadDataEx", "cuModuleUnload",
    "cuModuleGetFunction", "cuFuncGetAttribute", "cuFuncSetAttribute", "cuLaunchKernel", "cuEventCreate",
    "cuEventDestroy_v2", "cuEventRecord", "cuEventSynchronize", "cuEventElapsedTime",
};

constexpr const char* kNvrtcSymbols[] = {
    "nvrtcGetErrorString", "nvrtcVersion", "nvrtcGetNumSupportedArchs", "nvrtcGetSupportedArchs",
    "nvrtcCreateProgram", "nvrtcDestroyProgram", "nvrtcCompileProgram", "nvrtcGetProgramLogSize",
    "nvrtcGetProgramLog", "nvrtcGetPTXSize", "nvrtcGetPTX", "nvrtcGetCUBINSize", "nvrtcGetCUBIN",
    "nvrtcAddNameExpression", "nvrtcGetLoweredName",
};

struct DriverState {
  DriverApi api{};
  LoadedLibrary lib;
  std::string error;  // set when the driver cannot be used; the message of every later attempt
};

struct NvrtcState {
  NvrtcApi api{};
  LoadedLibrary lib;
  std::string error;
};

std::mutex g_load_mutex;
std::optional<DriverState> g_driver;
std::optional<NvrtcState> g_nvrtc;

DriverState open_driver() {
  DriverState s;
  std::vector<std::string> tried;
  void* handle = nullptr;
  std::string why;
  for (const std::string& candidate : driver_candidates()) {
    tried.push_back(candidate);
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      s.lib.path = real_path(handle, candidate);
      break;
    }
    if (why.empty()) {
      const char* e = dlerror();
      why = e ? e : "";
    }
  }
  if (!handle) {
    s.error = "[metalrt.cuda] libcuda.so.1 not found (looked in: " + join(tried) +
              "); the CUDA backend needs an NVIDIA GPU with its driver installed (nvidia-smi should list "
              "the GPU); on a machine without one, use the 'sim' backend";
    return s;
  }
  std::string missing = resolve(handle, kDriverSymbols, &s.api);
  if (!missing.empty()) {
    s.error = "[metalrt.cuda] " + s.lib.path + " lacks " + missing +
              "; the NVIDIA driver is too old: install a driver for CUDA 12 or newer (525+)";
    return s;
  }
  CUresult r = s.api.cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    const char* text = nullptr;
    s.api.cuGetErrorName(r, &name);
    s.api.cuGetErrorString(r, &text);
    s.error = std::string("[metalrt.cuda] the NVIDIA driver did not start (cuInit: ") + (name ? name : "?") + ": " +
              (text ? text : "unknown error") +
              "); check that nvidia-smi lists a GPU and that CUDA_VISIBLE_DEVICES does not hide it";
    return s;
  }
  s.api.cuDriverGetVersion(&s.lib.version);
  return s;
}

// NVRTC opens its builtins library (libnvrtc-builtins.so.<major>.<minor>) by soname, which the
// loader finds only on its own search path; a wheel's lib folder is not on it. Loading the
// builtins from the folder NVRTC comes from first makes that later lookup find them loaded.
void preload_builtins(const std::string& nvrtc_path) {
  size_t slash = nvrtc_path.rfind('/');
  if (slash == std::string::npos) return;  // a bare soname: the loader's search finds both
  std::string dir = nvrtc_path.substr(0, slash);
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("libnvrtc-builtins.so.", 0) == 0) dlopen((dir + "/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
  }
  closedir(d);
}

NvrtcState open_nvrtc(const std::vector<std::string>& extra_dirs) {
  // Prefer an NVRTC no newer than the driver: a newer one's code may not load on it.
  int driver_major = 0;
  if (g_driver && g_driver->error.empty()) driver_major = g_driver->lib.version / 1000;

  std::vector<std::string> tried;
  std::optional<NvrtcState> newer_than_driver;
  std::string first_error;
  for (const std::string& candidate : nvrtc_candidates(extra_dirs)) {
    tried.push_back(candidate);
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) continue;
    preload_builtins(candidate);
    NvrtcState s;
    s.lib.path = real_path(handle, candidate);
    std::string missing = resolve(handle, kNvrtcSymbols, &s.api);
    if (!missing.empty()) {
      if (first_error.empty()) first_error = candidate + " lacks " + missing + " (NVRTC older than CUDA 12)";
      continue;
    }
    int major = 0, minor = 0;
    s.api.nvrtcVersion(&major, &minor);
    s.lib.version = major * 1000 + minor * 10;
    if (major < 12) {
      if (first_error.empty()) first_error = candidate + " is NVRTC " + std::to_string(major) + "." +
                                             std::to_string(minor) + ", older than the CUDA 12 metalrt needs";
      continue;
    }
    if (driver_major && major > driver_major) {
      if (!newer_than_driver) newer_than_driver = s;
      continue;
    }
    return s;
  }
  if (newer_than_driver) return *newer_than_driver;  // compiles; compiler.cpp explains if loading fails
  NvrtcState s;
  s.error = "[metalrt.cuda] libnvrtc not found (looked in: " + join(tried) + ")" +
            (first_error.empty() ? "" : "; " + first_error) +
            "; install it with `pip install nvidia-cuda-nvrtc` (CUDA 13 drivers) or `pip install "
            "nvidia-cuda-nvrtc-cu12` (CUDA 12 drivers), or point METALRT_NVRTC at a libnvrtc.so";
  return s;
}

}  // namespace

std::vector<std::string> driver_candidates() {
  // The bare soname first: the loader's own search (LD_LIBRARY_PATH, the ld.so cache) is where a
  // driver install puts it. The folders cover containers whose cache does not list the driver.
  return {"libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
          "/usr/lib64/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1", "/usr/lib/wsl/lib/libcuda.so.1"};
}

std::vector<std::string> nvrtc_candidates(const std::vector<std::string>& extra_dirs) {
  std::vector<std::string> out;
  std::string forced = env("METALRT_NVRTC");
  if (!forced.empty()) out.push_back(forced);
  std::vector<std::string> dirs = extra_dirs;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    std::string root = env(var);
    if (!root.empty()) {
      dirs.push_back(root + "/lib64");
      dirs.push_back(root + "/lib");
    }
  }
  dirs.push_back("/usr/local/cuda/lib64");
  for (const std::string& dir : dirs)
    for (const char* name : kNvrtcNames) out.push_back(dir + "/" + name);
  for (const char* name : kNvrtcNames) out.push_back(name);
  return out;
}

const DriverApi& driver_api() {
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (!g_driver) g_driver = open_driver();
  if (!g_driver->error.empty()) throw BackendUnavailable(g_driver->error);
  return g_driver->api;
}

const LoadedLibrary& driver_library() {
  driver_api();
  return g_driver->lib;
}

const NvrtcApi& nvrtc_api(const std::vector<std::string>& extra_dirs) {
  {
    std::lock_guard<std::mutex> lock(g_load_mutex);
    if (g_nvrtc) {
      if (!g_nvrtc->error.empty()) throw BackendUnavailable(g_nvrtc->error);
      return g_nvrtc->api;
    }
  }
  try {
    driver_api();  // its version decides which NVRTC to prefer
  } catch (const BackendUnavailable&) {
    // NVRTC alone still compiles (tests, cache warming on a build machine)
  }
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (!g_nvrtc) g_nvrtc = open_nvrtc(extra_dirs);
  if (!g_nvrtc->error.empty()) throw BackendUnavailable(g_nvrtc->error);
  return g_nvrtc->api;
}

const LoadedLibrary& nvrtc_library() {
  nvrtc_api();
  return g_nvrtc->lib;
}

std::string describe(CUresult result) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (g_driver && g_driver->error.empty()) {
    g_driver->api.cuGetErrorName(result, &name);
    g_driver->api.cuGetErrorString(result, &text);
  }
  std::string s = name ? name : "CUDA error " + std::to_string(result);
  if (text) s += std::string(": ") + text;
  return s;
}

}  // namespace metalrt::cuda
