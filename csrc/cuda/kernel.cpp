// One launch: bound arguments into cuLaunchKernel's parameter array, on the current stream.
//
// This is the hot path of every metalrt call on CUDA: it allocates nothing for kernels of up to
// 32 parameters, reads the current context and stream once each, and otherwise only fills
// pointers. Every check that needs the signature was done by core before it got here.
#include "cuda/kernel.h"

#include <algorithm>
#include <vector>

#include "core/errors.h"

namespace metalrt::cuda {
namespace {

std::string dims(const Dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

constexpr size_t kInlineParams = 32;

}  // namespace

Module::~Module() {
  // At interpreter exit the driver may already be shut down; it then says so, and there is
  // nothing left to free.
  CUcontext current = nullptr;
  const DriverApi& api = device_.api();
  if (api.cuCtxGetCurrent(&current) == CUDA_SUCCESS && current != device_.context())
    api.cuCtxSetCurrent(device_.context());
  api.cuModuleUnload(handle_);
}

CudaKernel::CudaKernel(KernelSignature sig, std::shared_ptr<Module> module, const std::string& symbol)
    : Kernel(std::move(sig)), module_(std::move(module)), device_(module_->device()) {
  const DriverApi& api = device_.api();
  const std::string& name = signature().name;
  device_.make_current();
  CUresult r = api.cuModuleGetFunction(&function_, module_->handle(), symbol.c_str());
  if (r != CUDA_SUCCESS)
    throw CompileError("[metalrt.cuda] kernel '" + name + "': the compiled module has no function '" + symbol +
                       "' (" + describe(r) + ")");
  int max_threads = 0, static_shared = 0, dynamic_shared = 0;
  api.cuFuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, function_);
  api.cuFuncGetAttribute(&static_shared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, function_);
  api.cuFuncGetAttribute(&dynamic_shared, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, function_);
  api.cuFuncGetAttribute(&registers_, CU_FUNC_ATTRIBUTE_NUM_REGS, function_);

  const DeviceInfo& info = device_.info();
  // The function's own maximum accounts for its registers and __launch_bounds__.
  limits_.max_threads_per_group = uint32_t(max_threads > 0 ? max_threads : int(info.max_threads_per_group));
  limits_.simd_width = info.simd_width;
  limits_.max_threadgroup_memory = device_.shared_memory_optin();
  limits_.static_threadgroup_memory = uint64_t(std::max(static_shared, 0));
  for (int axis = 0; axis < 3; ++axis) limits_.max_grid[axis] = device_.max_grid_dim(axis);
  dynamic_shared_ok_ = uint64_t(std::max(dynamic_shared, 0));

  policy_.memory = MemoryKind::CUDA;
  policy_.device_index = device_.ordinal();
  policy_.accept_host_arrays = false;
  policy_.backend = "cuda";
  policy_.threadgroup_params = false;
  id_ = device_.register_kernel(name);
}

void CudaKernel::launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) {
  const DriverApi& api = device_.api();
  const KernelSignature& sig = signature();

  uint64_t dynamic_shared = 0;
  for (const auto& [index, bytes] : geometry.threadgroup_memory) {
    if (index != 0)
      throw LaunchError("kernel '" + sig.name + "': threadgroup_memory has index " + std::to_string(index) +
                        "; a CUDA kernel has one block of dynamic shared memory (extern __shared__), sized with "
                        "threadgroup_memory={0: nbytes}");
    dynamic_shared = bytes;
  }
  const Dim3& block = geometry.group_size;
  const uint64_t block_dims[3] = {block.x, block.y, block.z};
  for (int axis = 0; axis < 3; ++axis)
    if (block_dims[axis] > device_.max_block_dim(axis))
      throw LaunchError("kernel '" + sig.name + "': group_size " + dims(block) + " has " +
                        std::to_string(block_dims[axis]) + " threads along " + std::string(1, "xyz"[axis]) +
                        ", above the device's limit of " + std::to_string(device_.max_block_dim(axis)));

  // cuLaunchKernel reads each parameter through a pointer: buffers through a slot holding the
  // device address, values straight from their packed bytes.
  const size_t n = sig.params.size();
  void* inline_slots[kInlineParams];
  void* inline_params[kInlineParams];
  std::vector<void*> heap_slots, heap_params;
  void** slots = inline_slots;
  void** params = inline_params;
  if (n > kInlineParams) {
    heap_slots.resize(n);
    heap_params.resize(n);
    slots = heap_slots.data();
    params = heap_params.data();
  }
  std::fill(params, params + n, nullptr);
  for (const BoundArg& a : args) {
    const size_t i = size_t(a.index);
    if (a.index < 0 || i >= n) continue;
    if (a.kind == BoundArg::Kind::Buffer) {
      slots[i] = a.data;
      params[i] = &slots[i];
    } else if (a.kind == BoundArg::Kind::Bytes) {
      params[i] = const_cast<void*>(a.bytes());
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (!params[i])
      throw LaunchError("kernel '" + sig.name + "': parameter '" + sig.params[i].name +
                        "' received no argument (a bug in metalrt's binding; please report it)");

  device_.make_current();
  if (dynamic_shared > dynamic_shared_ok_) {
    // Above the default 48 KiB a kernel must opt in to more dynamic shared memory.
    device_.check(api.cuFuncSetAttribute(function_, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, int(dynamic_shared)),
                  "allowing kernel '" + sig.name + "' " + std::to_string(dynamic_shared) +
                      " bytes of dynamic shared memory");
    dynamic_shared_ok_ = dynamic_shared;
  }
  CUstream stream = device_.current_stream();
  device_.note_launch(id_);
  const Dim3& grid = geometry.groups;
  CUresult r = api.cuLaunchKernel(function_, unsigned(grid.x), unsigned(grid.y), unsigned(grid.z), unsigned(block.x),
                                  unsigned(block.y), unsigned(block.z), unsigned(dynamic_shared), stream, params,
                                  nullptr);
  if (r != CUDA_SUCCESS)
    device_.check(r, "launching kernel '" + sig.name + "' (grid " + dims(grid) + " x group " + dims(block) + ", " +
                         std::to_string(dynamic_shared) + " bytes of dynamic shared memory, " +
                         std::to_string(registers_) + " registers per thread)");
}

}  // namespace metalrt::cuda
