// Placeholder until the metal backend's bindings land (owned by the metal engineer).
#include "bindings/backends.h"

namespace metalrt::bindings {
void bind_metal(pybind11::module_&) {}
}  // namespace metalrt::bindings

