// The CUDA backend as the bindings see it (csrc/bindings/cuda.cpp): open the driver and NVRTC,
// describe a device, compile, load, wait, time. The Python driver (metalrt._cuda) strings these
// together with the disk cache: parse -> key -> (cache hit | compile + store) -> load.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda/api.h"
#include "cuda/compiler.h"
#include "cuda/device.h"

namespace metalrt::cuda {

// Loads `image` (a cubin, or PTX when !cubin) into device `ordinal`'s primary context and makes
// one kernel per signature of `parsed`; C++ kernels are looked up by `lowered`
// (name expression -> symbol, from CompiledImage::lowered). Throws CompileError when the driver
// refuses the image (with its JIT log) or a kernel is missing from it.
std::shared_ptr<Library> load_library(int ordinal, const std::string& image, bool cubin, const ParsedSource& parsed,
                                      const std::map<std::string, std::string>& lowered);

// A timer of CUDA events on the current stream of device `ordinal`.
std::shared_ptr<Timer> make_timer(int ordinal);

}  // namespace metalrt::cuda
