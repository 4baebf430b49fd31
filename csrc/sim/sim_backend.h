// The sim backend as the bindings see it: load a compiled kernel library, describe the device,
// make timers, and set the executor's options. Python reaches these through metalrt._C
// (csrc/bindings/sim.cpp); the sim's driver (src/metalrt/sim/driver.py) builds on them.
#pragma once
#include <memory>
#include <string>

#include "core/backend.h"
#include "sim/executor.h"

namespace metalrt::sim {

// Loads the shared object at `path` (built by the sim's front end from the source `parsed`
// came from) and binds each kernel of `parsed` to its entry. Throws CompileError when the file
// cannot be loaded, was built for another executor ABI version, or lacks a kernel.
std::shared_ptr<Library> load_library(const std::string& path, const ParsedSource& parsed);

DeviceInfo device_info();

// Measures the CPU wall-clock time of the sim launches between start() and stop().
std::shared_ptr<Timer> make_timer();

// The executor ABI version this runtime speaks (MSIM_ABI_VERSION); it belongs in the sim's
// disk-cache key.
uint32_t abi_version();

ExecutorOptions executor_options();
void set_executor_options(const ExecutorOptions& options);

}  // namespace metalrt::sim
