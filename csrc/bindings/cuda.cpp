// The CUDA backend's functions in metalrt._C. The CUDA driver (metalrt._cuda) is their user; the
// classes they return (Library, Kernel, Timer, DeviceInfo) are bound in module.cpp. Also here:
// the stream provider that puts every launch on PyTorch's current stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/args.h"
#include "bindings/backends.h"
#include "bindings/profile.h"
#include "core/errors.h"
#include "core/signature.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernel.h"

#if METALRT_WITH_CUDA
namespace py = pybind11;

namespace metalrt::bindings {
namespace {

using namespace metalrt::cuda;

// ---- PyTorch's current stream ------------------------------------------------------------------

// torch.cuda.current_stream(device).cuda_stream, read through torch's DLPack exchange API (a C
// call; torch >= 2.10), else torch._C._cuda_getCurrentRawStream (a Python call, no Stream
// object). Looked up once torch has been imported; until torch has initialised CUDA, its
// current stream is the default stream, which is what nullptr means to cuLaunchKernel (and
// asking torch for it would initialise CUDA). Called on the launch path, where the GIL is held.
struct TorchStreams {
  PyObject* get_raw_stream = nullptr;  // torch._C._cuda_getCurrentRawStream
  PyObject* is_initialized = nullptr;  // torch.cuda.is_initialized
  bool cuda_initialized = false;
  PyObject* ordinals[64] = {};
};

TorchStreams g_torch;

bool find_torch() {
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  PyObject* torch_c = PyDict_GetItemString(modules, "torch._C");
  PyObject* torch_cuda = PyDict_GetItemString(modules, "torch.cuda");
  if (!torch_c || !torch_cuda) return false;
  PyObject* get = PyObject_GetAttrString(torch_c, "_cuda_getCurrentRawStream");
  PyObject* init = PyObject_GetAttrString(torch_cuda, "is_initialized");
  if (!get || !init) {  // a torch built without CUDA
    PyErr_Clear();
    Py_XDECREF(get);
    Py_XDECREF(init);
    return false;
  }
  g_torch.get_raw_stream = get;  // kept for the life of the process
  g_torch.is_initialized = init;
  return true;
}

CUstream read_torch_stream(int ordinal) {
  if (!g_torch.get_raw_stream && !find_torch()) return nullptr;
  if (!g_torch.cuda_initialized) {
    PyObject* r = PyObject_CallNoArgs(g_torch.is_initialized);
    if (!r) throw py::error_already_set();
    g_torch.cuda_initialized = r == Py_True;
    Py_DECREF(r);
    if (!g_torch.cuda_initialized) return nullptr;
  }
  void* exchanged = nullptr;
  if (torch_dlpack_stream(ordinal, &exchanged)) return static_cast<CUstream>(exchanged);
  PyObject* index = ordinal >= 0 && ordinal < 64 ? g_torch.ordinals[ordinal] : nullptr;
  if (!index) {
    index = PyLong_FromLong(ordinal);
    if (ordinal >= 0 && ordinal < 64) g_torch.ordinals[ordinal] = index;  // kept
  }
  PyObject* r = PyObject_CallOneArg(g_torch.get_raw_stream, index);
  if (ordinal < 0 || ordinal >= 64) Py_DECREF(index);
  if (!r) throw py::error_already_set();
  void* stream = PyLong_AsVoidPtr(r);
  Py_DECREF(r);
  if (!stream && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<CUstream>(stream);
}

CUstream torch_current_stream(int ordinal) {
  if (PyGILState_Check()) return read_torch_stream(ordinal);
  py::gil_scoped_acquire gil;  // a caller off the Python thread (none today)
  return read_torch_stream(ordinal);
}

// ---- metalrt.profile(): CUDA events around each launch ----------------------------------------

// Each profiled launch takes a pair of events from a pool, records them on the stream the launch
// goes to (PyTorch's current stream, read the same way), and gives them back once the profile has
// read the elapsed time at its end: the launch stays asynchronous, and only the profile's end
// waits, for those events alone. Events are created on first need, in the device's context, and
// reused by later profiles: creating two per launch would cost more than the launch.
class CudaEventClock final : public ProfileClock {
 public:
  const char* name() const override { return "cuda-event"; }
  bool times(const Kernel& kernel) const override { return dynamic_cast<const CudaKernel*>(&kernel) != nullptr; }

  void begin(Kernel&, const BindPolicy&, LaunchTime* t) override {
    Device& device = Device::get(t->device);
    device.make_current();
    t->token = take(device);
    try {
      record(device, pairs_[t->token].start);
    } catch (...) {
      give_back(t->token);
      throw;
    }
  }

  void end(Kernel&, LaunchTime* t) override { record(Device::get(t->device), pairs_[t->token].stop); }

  void resolve(LaunchTime* t) override {
    Device& device = Device::get(t->device);
    const DriverApi& api = device.api();
    const Pair& pair = pairs_[t->token];
    device.make_current();
    float ms = 0;
    CUresult waited = api.cuEventSynchronize(pair.stop);
    CUresult read = waited == CUDA_SUCCESS ? api.cuEventElapsedTime(&ms, pair.start, pair.stop) : waited;
    give_back(t->token);  // before the checks: a faulted kernel must not cost the pool its events
    device.check(waited, "waiting for a profiled launch of the kernel to finish");
    device.check(read, "reading a profiled launch's CUDA events");
    t->ms = double(ms);
    t->resolved = true;
  }

  void discard(LaunchTime* t) override { give_back(t->token); }

 private:
  struct Pair {
    int device;
    CUevent start, stop;
  };

  size_t take(Device& device) {
    size_t ordinal = size_t(device.ordinal());
    if (free_.size() <= ordinal) free_.resize(ordinal + 1);
    std::vector<size_t>& free = free_[ordinal];
    if (!free.empty()) {
      size_t index = free.back();
      free.pop_back();
      return index;
    }
    const DriverApi& api = device.api();
    Pair pair{device.ordinal(), nullptr, nullptr};
    device.check(api.cuEventCreate(&pair.start, CU_EVENT_DEFAULT), "creating a profile event");
    CUresult r = api.cuEventCreate(&pair.stop, CU_EVENT_DEFAULT);
    if (r != CUDA_SUCCESS) api.cuEventDestroy(pair.start);
    device.check(r, "creating a profile event");
    pairs_.push_back(pair);
    return pairs_.size() - 1;
  }

  void give_back(size_t index) { free_[size_t(pairs_[index].device)].push_back(index); }

  static void record(Device& device, CUevent event) {
    device.check(device.api().cuEventRecord(event, device.current_stream()), "recording a profile event");
  }

  std::vector<Pair> pairs_;               // never destroyed: the driver may be gone at exit
  std::vector<std::vector<size_t>> free_;  // per device ordinal: indices into pairs_
};

// ---- helpers -----------------------------------------------------------------------------------

py::dict library_dict(const LoadedLibrary& lib) {
  py::dict d;
  d["path"] = lib.path;
  d["version"] = lib.version;
  d["version_text"] = std::to_string(lib.version / 1000) + "." + std::to_string(lib.version % 1000 / 10);
  return d;
}

py::dict target_dict(const Target& t) {
  py::dict d;
  d["arch"] = t.arch;
  d["cubin"] = t.cubin;
  d["name"] = t.name();
  return d;
}

}  // namespace

void bind_cuda(py::module_& m) {
  set_stream_provider(&torch_current_stream);
  add_profile_clock(new CudaEventClock());  // lives as long as the process

  m.def("cuda_driver_candidates", &driver_candidates,
        "Where the CUDA backend looks for libcuda.so.1, in order.");
  m.def("cuda_nvrtc_candidates", &nvrtc_candidates, py::arg("extra_dirs") = std::vector<std::string>{},
        "Where the CUDA backend looks for libnvrtc, in order: $METALRT_NVRTC, extra_dirs (the NVIDIA\n"
        "wheels' lib folders), $CUDA_HOME, $CUDA_PATH, /usr/local/cuda, then the loader's own search.");

  m.def(
      "cuda_open_driver", [] { return library_dict(driver_library()); },
      "Opens libcuda.so.1 and runs cuInit; returns {path, version, version_text}. Raises\n"
      "BackendUnavailable naming where it looked when there is no usable driver.");
  m.def(
      "cuda_open_nvrtc",
      [](const std::vector<std::string>& extra_dirs) {
        nvrtc_api(extra_dirs);
        return library_dict(nvrtc_library());
      },
      py::arg("extra_dirs") = std::vector<std::string>{},
      "Opens libnvrtc (once per process: later calls return what the first found); returns\n"
      "{path, version, version_text}. Raises BackendUnavailable with where it looked and the fix.");

  m.def("cuda_device_count", &Device::count, "CUDA devices the driver sees (raises without a driver).");
  m.def(
      "cuda_device_info", [](int ordinal) { return Device::get(ordinal).info(); }, py::arg("ordinal") = 0,
      "The DeviceInfo of CUDA device `ordinal`; retains its primary context (PyTorch's) on first use.");
  m.def(
      "cuda_target", [](int ordinal) { return target_dict(choose_target(Device::get(ordinal).arch())); },
      py::arg("ordinal") = 0,
      "What NVRTC compiles for device `ordinal`: {arch, cubin, name}, e.g. {90, True, 'sm_90'}; PTX\n"
      "(cubin False) for a GPU newer than the NVRTC.");
  m.def(
      "cuda_target_for_arch", [](int arch) { return target_dict(choose_target(arch)); }, py::arg("arch"),
      "choose_target for a compute capability given as 10 * major + minor (no device needed).");

  m.def(
      "cuda_compile",
      [](const std::string& source, const std::vector<std::string>& options,
         const std::vector<std::string>& name_expressions, int arch, bool cubin, const std::string& filename) {
        CompileRequest request;
        request.source = source;
        request.filename = filename;
        request.target.arch = arch;
        request.target.cubin = cubin;
        request.options = options;
        request.name_expressions = name_expressions;
        CompiledImage image;
        {
          py::gil_scoped_release nogil;
          image = compile(request);
        }
        py::dict d;
        d["image"] = py::bytes(image.image);
        d["cubin"] = image.cubin;
        d["lowered"] = image.lowered;
        d["log"] = image.log;
        return d;
      },
      py::arg("source"), py::arg("options"), py::arg("name_expressions"), py::arg("arch"), py::arg("cubin") = true,
      py::arg("filename") = "kernel.cu",
      "Compiles CUDA C++ with NVRTC for compute capability `arch` (a cubin, or PTX when cubin is\n"
      "False). Returns {image: bytes, cubin, lowered: {name expression: symbol}, log}. Raises\n"
      "CompileError with NVRTC's log; its line is the first error's line in `source`.");

  m.def(
      "cuda_load",
      [](int ordinal, const py::bytes& image, bool cubin, const ParsedSource& parsed,
         const std::map<std::string, std::string>& lowered) {
        std::string data = image;
        return load_library(ordinal, data, cubin, parsed, lowered);
      },
      py::arg("ordinal"), py::arg("image"), py::arg("cubin"), py::arg("parsed"),
      py::arg("lowered") = std::map<std::string, std::string>{},
      "Loads a compiled image into device `ordinal`'s primary context and returns its Library: one\n"
      "kernel per signature of `parsed` (from parse_cuda on the same source and options).");

  m.def(
      "cuda_synchronize", [](int ordinal) { Device::get(ordinal).synchronize(); }, py::arg("ordinal") = 0,
      py::call_guard<py::gil_scoped_release>(),
      "Waits for all work on device `ordinal` (every stream); raises LaunchError if a kernel faulted.");
  m.def("cuda_timer", &make_timer, py::arg("ordinal") = 0,
        "A Timer of CUDA events recorded on the current stream (PyTorch's) of device `ordinal`.");

  m.def("cuda_builtin_headers", &builtin_headers,
        "The stand-ins served for headers NVRTC lacks (<stdint.h>, <cmath>, <cuda_runtime.h>, ...).");
  m.def("cuda_first_error", &first_error, py::arg("log"), py::arg("filename") = "kernel.cu",
        "(line, text) of the first error an NVRTC log reports in `filename`; line 0 when none.");
}

}  // namespace metalrt::bindings
#endif
