// Each backend adds its functions and classes to metalrt._C through one entry point.
// module.cpp calls all three: bind_sim and bind_metal are compiled on every platform (the
// Metal file binds its platform-neutral logic everywhere and its device only on Apple);
// bind_cuda everywhere but macOS.
#pragma once
#include <pybind11/pybind11.h>

namespace metalrt::bindings {

void bind_sim(pybind11::module_& m);
void bind_metal(pybind11::module_& m);
#if METALRT_WITH_CUDA
void bind_cuda(pybind11::module_& m);
#endif

}  // namespace metalrt::bindings
