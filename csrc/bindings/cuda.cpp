// Placeholder until the cuda backend's bindings land (owned by the cuda engineer).
#include "bindings/backends.h"
#if METALRT_WITH_CUDA
namespace metalrt::bindings {
void bind_cuda(pybind11::module_&) {}
}  // namespace metalrt::bindings
#endif
