#include "cuda/device.h"

#include <algorithm>
#include <map>
#include <memory>

#include "core/errors.h"

namespace metalrt::cuda {
namespace {

StreamProvider g_stream_provider = nullptr;

// Errors after which the context is unusable for the rest of the process: they come from a
// kernel that faulted while running, and every later call reports them again.
bool is_sticky(CUresult r) {
  switch (r) {
    case 700:  // CUDA_ERROR_ILLEGAL_ADDRESS
    case 702:  // CUDA_ERROR_LAUNCH_TIMEOUT
    case 714:  // CUDA_ERROR_HARDWARE_STACK_ERROR
    case 715:  // CUDA_ERROR_ILLEGAL_INSTRUCTION
    case 716:  // CUDA_ERROR_MISALIGNED_ADDRESS
    case 717:  // CUDA_ERROR_INVALID_ADDRESS_SPACE
    case 718:  // CUDA_ERROR_INVALID_PC
    case 719:  // CUDA_ERROR_LAUNCH_FAILED
    case 710:  // CUDA_ERROR_ASSERT
      return true;
    default:
      return false;
  }
}

int attribute(const DriverApi& api, CUdevice device, int attr, int fallback) {
  int value = 0;
  return api.cuDeviceGetAttribute(&value, attr, device) == CUDA_SUCCESS && value > 0 ? value : fallback;
}

}  // namespace

void set_stream_provider(StreamProvider provider) { g_stream_provider = provider; }

int Device::count() {
  const DriverApi& api = driver_api();
  int n = 0;
  if (api.cuDeviceGetCount(&n) != CUDA_SUCCESS) return 0;
  return n;
}

Device& Device::get(int ordinal) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<Device>> devices;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = devices.find(ordinal);
  if (it != devices.end()) return *it->second;
  int n = count();
  if (ordinal < 0 || ordinal >= n)
    throw BackendUnavailable("[metalrt.cuda] no CUDA device " + std::to_string(ordinal) + " (the driver sees " +
                             std::to_string(n) + (n == 1 ? " device" : " devices") +
                             "); set METALRT_CUDA_DEVICE to one of them, or check CUDA_VISIBLE_DEVICES");
  std::unique_ptr<Device> d(new Device(ordinal));
  Device& ref = *d;
  devices.emplace(ordinal, std::move(d));
  return ref;
}

Device::Device(int ordinal) : api_(driver_api()), ordinal_(ordinal) {
  CUresult r = api_.cuDeviceGet(&device_, ordinal);
  if (r != CUDA_SUCCESS)
    throw BackendUnavailable("[metalrt.cuda] cannot open CUDA device " + std::to_string(ordinal) + ": " + describe(r));
  r = api_.cuDevicePrimaryCtxRetain(&context_, device_);
  if (r != CUDA_SUCCESS)
    throw BackendUnavailable("[metalrt.cuda] cannot create a context on CUDA device " + std::to_string(ordinal) +
                             ": " + describe(r) + " (is the GPU in exclusive-process mode and used by another process?)");

  const int major = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0);
  const int minor = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0);
  arch_ = major * 10 + minor;
  max_block_dim_[0] = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X, 1024);
  max_block_dim_[1] = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, 1024);
  max_block_dim_[2] = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z, 64);
  max_grid_dim_[0] = uint64_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, 2147483647));
  max_grid_dim_[1] = uint64_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, 65535));
  max_grid_dim_[2] = uint64_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, 65535));
  shared_default_ = uint64_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, 49152));
  shared_optin_ = std::max<uint64_t>(
      shared_default_, uint64_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, 0)));

  char name[256] = {};
  api_.cuDeviceGetName(name, sizeof(name) - 1, device_);
  size_t total = 0;
  api_.cuDeviceTotalMem(&total, device_);
  info_.backend = "cuda";
  info_.name = name[0] ? name : "CUDA device " + std::to_string(ordinal);
  info_.target = arch_name();
  info_.index = ordinal;
  info_.max_threads_per_group = uint32_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, 1024));
  info_.simd_width = uint32_t(attribute(api_, device_, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 32));
  info_.max_threadgroup_memory = shared_optin_;
  info_.memory_bytes = total;
  info_.unified_memory = false;
  // DRAM transfers twice per memory clock (DDR/HBM): 2 * clock * bus width.
  const double clock_khz = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, 0);
  const double bus_bits = attribute(api_, device_, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, 0);
  info_.peak_bandwidth_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
}

void Device::make_current() const {
  CUcontext current = nullptr;
  api_.cuCtxGetCurrent(&current);
  if (current == context_) return;
  CUresult r = api_.cuCtxSetCurrent(context_);
  if (r != CUDA_SUCCESS) throw LaunchError("[metalrt.cuda] cannot make device " + std::to_string(ordinal_) +
                                           "'s context current: " + describe(r));
}

CUstream Device::current_stream() const { return g_stream_provider ? g_stream_provider(ordinal_) : nullptr; }

void Device::synchronize() {
  make_current();
  check(api_.cuCtxSynchronize(), "waiting for the device");
}

void Device::check(CUresult result, const std::string& what) const {
  if (result == CUDA_SUCCESS) return;
  std::string message = "[metalrt.cuda] " + what + " failed: " + describe(result);
  if (is_sticky(result)) {
    std::string last = last_kernel();
    message += ". A kernel faulted while running" +
               (last.empty() ? std::string() : " (the last one metalrt launched was '" + last + "')") +
               "; the CUDA context is now unusable for the rest of this process. Run the kernel under "
               "compute-sanitizer to find the faulting access, and check every index against its bound";
  }
  throw LaunchError(message);
}

uint32_t Device::register_kernel(const std::string& name) {
  std::lock_guard<std::mutex> lock(names_mutex_);
  kernel_names_.push_back(name);
  return uint32_t(kernel_names_.size() - 1);
}

std::string Device::last_kernel() const {
  uint32_t id = last_launch_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(names_mutex_);
  return id < kernel_names_.size() ? kernel_names_[id] : std::string();
}

}  // namespace metalrt::cuda
