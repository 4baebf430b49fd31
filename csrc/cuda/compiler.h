// NVRTC: CUDA C++ source to a loadable image, for the device's own architecture.
//
// The source is compiled as the user wrote it (no rewriting), so NVRTC's log already points at
// the user's lines. The standard C headers kernels commonly include (<stdint.h>, <cmath>,
// <cfloat>...) and the host-only CUDA headers (<cuda_runtime.h>) are served from small built-in
// stand-ins, because NVRTC ships none of them; the CUDA type headers (<cuda_fp16.h>,
// <cuda_bf16.h>, ...) come from the toolkit include directories the caller lists.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace metalrt::cuda {

// What NVRTC is asked to produce for a device.
struct Target {
  int arch = 0;          // the architecture compiled for: 90
  bool cubin = true;     // true: SASS for exactly this arch ("sm_90"); false: PTX ("compute_90")
  std::string flag() const { return std::string("--gpu-architecture=") + (cubin ? "sm_" : "compute_") + std::to_string(arch); }
  std::string name() const { return (cubin ? "sm_" : "compute_") + std::to_string(arch); }
};

// A cubin when this NVRTC knows the device's architecture; otherwise PTX for the newest
// architecture it knows below the device's, which the driver compiles on load (a GPU newer than
// the NVRTC). Throws BackendUnavailable when NVRTC knows no architecture the device can run.
Target choose_target(int device_arch);

struct CompileRequest {
  std::string source;
  std::string filename = "kernel.cu";          // what NVRTC's log calls the source
  Target target;
  std::vector<std::string> options;            // -D..., math flags, -I...: composed by the driver
  std::vector<std::string> name_expressions;   // C++ names to resolve, e.g. "scale<float>"
};

struct CompiledImage {
  std::string image;                           // cubin bytes, or PTX text (NUL-terminated)
  bool cubin = true;
  std::map<std::string, std::string> lowered;  // name expression -> symbol in the image
  std::string log;                             // NVRTC's log of the successful compile (warnings)
};

// Throws CompileError whose log is NVRTC's and whose line is the first error's line in the
// user's source (0 when the first error is not in it).
CompiledImage compile(const CompileRequest& request);

// The built-in stand-ins, by include name (for tests and docs).
const std::map<std::string, std::string>& builtin_headers();

// The first error in an NVRTC log that points into `filename`: its line (0 if none) and text.
std::pair<int, std::string> first_error(const std::string& log, const std::string& filename);

}  // namespace metalrt::cuda
