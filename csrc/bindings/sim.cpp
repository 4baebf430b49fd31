// Placeholder until the sim backend's bindings land (owned by the sim engineer).
#include "bindings/backends.h"

namespace metalrt::bindings {
void bind_sim(pybind11::module_&) {}
}  // namespace metalrt::bindings

