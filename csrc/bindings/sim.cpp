// The sim backend's functions in metalrt._C: load a compiled kernel library, the device, the
// timer, and the executor's options. The sim's Python driver (metalrt.sim.driver) is their
// user; the classes they return (Library, Kernel, Timer, DeviceInfo) are bound in module.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <variant>

#include "bindings/backends.h"
#include "core/signature.h"
#include "sim/sim_backend.h"

namespace py = pybind11;

namespace metalrt::bindings {

namespace {

py::dict options_dict(const sim::ExecutorOptions& o) {
  py::dict d;
  d["workers"] = o.workers;
  d["racecheck"] = sim::race_check_name(o.race_check);
  d["stack_kib"] = o.stack_kib;
  return d;
}

}  // namespace

void bind_sim(py::module_& m) {
  m.def("sim_load", &sim::load_library, py::arg("path"), py::arg("parsed"),
        py::call_guard<py::gil_scoped_release>(),
        "Loads a kernel library the sim's front end compiled from the source `parsed` came from\n"
        "(dlopen, RTLD_LOCAL) and returns its Library. Raises CompileError when the file cannot\n"
        "be loaded, was built for another executor ABI version, or lacks one of the kernels.");

  m.def("sim_device", &sim::device_info, "The sim's DeviceInfo: the CPU, 32-wide SIMD-groups, 1024 threads "
        "and 32 KiB of threadgroup memory per threadgroup.");

  m.def("sim_timer", &sim::make_timer,
        "A Timer over the sim's launches: the CPU wall-clock time spent inside launches between\n"
        "start() and stop(). Its method says so: the sim's timings are not performance figures.");

  m.def("sim_abi_version", &sim::abi_version,
        "The executor ABI version (MSIM_ABI_VERSION in metalrt_sim_abi.h) this runtime loads; it\n"
        "belongs in the sim's disk-cache key.");

  m.def(
      "sim_options",
      [] {
        py::dict d = options_dict(sim::executor_options());
        d["worker_count"] = sim::Executor::instance().worker_count();
        return d;
      },
      "The executor's options: workers (0: one per core), worker_count (what that resolves to),\n"
      "racecheck ('auto', '0' or '1') and stack_kib (each GPU thread's stack).");

  m.def(
      "sim_set_options",
      [](std::optional<uint32_t> workers, std::optional<std::variant<bool, std::string>> racecheck,
         std::optional<uint32_t> stack_kib) {
        sim::ExecutorOptions o = sim::executor_options();
        const py::dict previous = options_dict(o);
        if (workers) o.workers = *workers;
        if (racecheck) {
          if (const bool* b = std::get_if<bool>(&*racecheck))
            o.race_check = *b ? sim::RaceCheck::On : sim::RaceCheck::Off;
          else
            o.race_check = sim::parse_race_check(std::get<std::string>(*racecheck), "racecheck");
        }
        if (stack_kib) o.stack_kib = *stack_kib;
        sim::set_executor_options(o);
        return previous;
      },
      py::kw_only(), py::arg("workers") = py::none(), py::arg("racecheck") = py::none(),
      py::arg("stack_kib") = py::none(),
      "Sets the executor's options from the next launch on and returns the previous ones (a dict\n"
      "that sim_set_options(**previous) restores). Unset arguments keep their value.\n"
      "  workers    worker threads running threadgroups in parallel; 0 means one per core\n"
      "             (default: METALRT_SIM_WORKERS, else 0)\n"
      "  racecheck  'auto' runs launches of kernels that use threadgroup memory and no atomics a\n"
      "             second time with each threadgroup's threads in reverse order and reports a\n"
      "             difference as a race; '0' or False never, '1' or True every launch\n"
      "             (default: METALRT_SIM_RACECHECK, else 'auto')\n"
      "  stack_kib  stack of each GPU thread, 16 to 1024 (default: METALRT_SIM_STACK_KIB, else 56)");
}

}  // namespace metalrt::bindings
