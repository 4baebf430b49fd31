// A compiled image loaded into the device's primary context, with one kernel per signature.
#include <map>

#include "core/errors.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernel.h"

namespace metalrt::cuda {
namespace {

class CudaLibrary final : public EagerLibrary {
 public:
  CudaLibrary(std::shared_ptr<Module> module, const ParsedSource& parsed,
              const std::map<std::string, std::string>& lowered) {
    structs_ = parsed.structs;
    for (const KernelSignature& sig : parsed.kernels) {
      // extern "C" kernels keep their name; C++ ones (templates) are found by their lowered name.
      std::string symbol = sig.function.empty() ? sig.name : sig.function;
      if (!sig.name_expression.empty()) {
        auto it = lowered.find(sig.name_expression);
        if (it == lowered.end())
          throw CompileError("[metalrt.cuda] kernel '" + sig.name + "' has no compiled symbol for '" +
                             sig.name_expression + "' (the cache entry or the compile missed it)");
        symbol = it->second;
      }
      add_kernel(sig.name, std::make_shared<CudaKernel>(sig, module, symbol));
    }
  }
};

}  // namespace

std::shared_ptr<Library> load_library(int ordinal, const std::string& image, bool cubin, const ParsedSource& parsed,
                                      const std::map<std::string, std::string>& lowered) {
  Device& device = Device::get(ordinal);
  const DriverApi& api = device.api();
  device.make_current();

  // A PTX image is compiled by the driver here; its JIT log explains a refusal.
  char jit_log[8192] = {};
  int options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* values[] = {jit_log, reinterpret_cast<void*>(uintptr_t(sizeof(jit_log) - 1))};
  CUmodule handle = nullptr;
  CUresult r = api.cuModuleLoadDataEx(&handle, image.data(), cubin ? 0 : 2, cubin ? nullptr : options,
                                      cubin ? nullptr : values);
  if (r != CUDA_SUCCESS) {
    const LoadedLibrary& driver = driver_library();
    std::string hint;
    if (r == 209 || r == 218 || r == 222 || r == 200)  // NO_BINARY_FOR_GPU, INVALID_PTX, UNSUPPORTED_PTX_VERSION, INVALID_IMAGE
      hint = "; the code was compiled by NVRTC " + std::to_string(nvrtc_library().version / 1000) + "." +
             std::to_string(nvrtc_library().version % 1000 / 10) + " for " + device.arch_name() +
             ", and the driver supports CUDA " + std::to_string(driver.version / 1000) + "." +
             std::to_string(driver.version % 1000 / 10) +
             ": use an NVRTC no newer than the driver (METALRT_NVRTC, or pip install nvidia-cuda-nvrtc-cu12), or "
             "update the driver";
    throw CompileError("[metalrt.cuda] the driver could not load the compiled " + std::string(cubin ? "cubin" : "PTX") +
                           ": " + describe(r) + hint,
                       jit_log);
  }
  auto module = std::make_shared<Module>(device, handle);
  return std::make_shared<CudaLibrary>(module, parsed, lowered);
}

}  // namespace metalrt::cuda
