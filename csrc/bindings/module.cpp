// metalrt._C: the one extension module. This file binds the backend-neutral core (signatures,
// parsing, the Library/Kernel/Timer interface, errors) and Kernel.__call__; each backend adds
// its own entry points through bindings/backends.h.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>

#include "bindings/args.h"
#include "bindings/backends.h"
#include "bindings/profile.h"
#include "core/backend.h"
#include "core/errors.h"
#include "core/preprocess.h"
#include "core/signature.h"

namespace py = pybind11;
using namespace metalrt;

namespace {

// ---- errors ----------------------------------------------------------------------------------

// Raises metalrt.errors.<name>; the module is imported on first need, so `_C` stays importable
// (with builtin exceptions) even if the Python package is broken.
void raise_python(const char* name, const char* message, const CompileError* compile = nullptr) {
  try {
    py::object cls = py::module_::import("metalrt.errors").attr(name);
    py::object exc = compile ? cls(message, py::arg("log") = compile->log(), py::arg("line") = compile->line())
                             : cls(message);
    PyErr_SetObject(cls.ptr(), exc.ptr());
  } catch (py::error_already_set&) {
    PyErr_SetString(PyExc_RuntimeError, message);
  }
}

void translate_errors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const CompileError& e) {
    raise_python("CompileError", e.what(), &e);
  } catch (const ArgumentError& e) {
    raise_python("ArgumentError", e.what());
  } catch (const LaunchError& e) {
    raise_python("LaunchError", e.what());
  } catch (const BackendUnavailable& e) {
    raise_python("BackendUnavailable", e.what());
  } catch (const Error& e) {
    raise_python("MetalrtError", e.what());
  }
}

// ---- names and reprs -----------------------------------------------------------------------

const char* kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::Buffer: return "buffer";
    case ParamKind::Reference: return "reference";
    case ParamKind::Value: return "value";
    case ParamKind::Builtin: return "builtin";
    case ParamKind::Threadgroup: return "threadgroup";
  }
  return "?";
}

const char* dialect_name(Dialect d) { return d == Dialect::CUDA ? "cuda" : "msl"; }

// The parameter as MSL (or CUDA) would declare it: "const device float* x [[buffer(0)]]".
std::string declare(const Param& p, Dialect d) {
  std::string s = p.type_text + " " + p.name;
  if (d == Dialect::CUDA) return s;
  switch (p.kind) {
    case ParamKind::Builtin: return s + " [[" + p.builtin + "]]";
    case ParamKind::Threadgroup: return s + " [[threadgroup(" + std::to_string(p.index) + ")]]";
    case ParamKind::Buffer:
    case ParamKind::Reference: return s + " [[buffer(" + std::to_string(p.index) + ")]]";
    case ParamKind::Value: return s;
  }
  return s;
}

std::string declare(const KernelSignature& sig) {
  std::string s = sig.name + "(";
  for (size_t k = 0; k < sig.params.size(); ++k) s += (k ? ", " : "") + declare(sig.params[k], sig.dialect);
  return s + ")";
}

Defines to_defines(const py::object& obj) {
  Defines out;
  if (obj.is_none()) return out;
  if (!py::isinstance<py::dict>(obj)) throw py::type_error("defines must be a dict {name: value}");
  for (auto item : py::reinterpret_borrow<py::dict>(obj)) {
    std::string name = py::str(item.first);
    py::handle v = item.second;
    std::string value;
    if (v.is_none()) value = "";
    else if (py::isinstance<py::bool_>(v)) value = v.cast<bool>() ? "1" : "0";
    else if (py::isinstance<py::int_>(v)) value = py::str(v);
    else if (py::isinstance<py::float_>(v)) value = py::repr(v);
    else if (py::isinstance<py::str>(v)) value = v.cast<std::string>();
    else
      throw py::type_error("defines['" + name + "'] must be a str, int, float, bool or None, got " +
                           std::string(py::str(py::type::of(v).attr("__name__"))));
    out[name] = value;
  }
  return out;
}

// ---- Kernel.__call__ -----------------------------------------------------------------------

// Launches that reached a backend, process-wide. The evaluator reads it around a candidate's
// forward pass (a native counter, so a candidate cannot patch it from Python).
std::atomic<uint64_t> g_launch_count{0};

enum class LaunchOption { Threads, Groups, GroupSize, ThreadgroupMemory, Unknown };

// The launch keywords. Names at a call site are interned by the compiler, so they match by
// pointer; a name built at run time (**options) falls back to comparing text.
LaunchOption launch_option(PyObject* key) {
  static PyObject* const names[] = {PyUnicode_InternFromString("threads"), PyUnicode_InternFromString("groups"),
                                    PyUnicode_InternFromString("group_size"),
                                    PyUnicode_InternFromString("threadgroup_memory")};  // kept for the process
  for (int k = 0; k < 4; ++k)
    if (key == names[k]) return static_cast<LaunchOption>(k);
  for (int k = 0; k < 4; ++k)
    if (PyUnicode_Compare(key, names[k]) == 0) return static_cast<LaunchOption>(k);
  return LaunchOption::Unknown;
}

void launch(Kernel& kernel, const std::vector<BoundArg>& bound, const LaunchGeometry& geometry) {
  if (kernel.synchronous_launch()) {
    py::gil_scoped_release nogil;
    kernel.launch(bound, geometry);
  } else {
    kernel.launch(bound, geometry);
  }
}

// `args` holds `nargs` positional arguments followed by one value per name in `kwnames`
// (vectorcall's layout).
void call_kernel(Kernel& kernel, PyObject* const* args, size_t nargs, PyObject* kwnames) {
  const KernelSignature& sig = kernel.signature();
  LaunchRequest request;
  int dims = 0;
  Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < keywords; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    PyObject* value = args[nargs + static_cast<size_t>(k)];
    if (value == Py_None) continue;
    Dim3 d;
    switch (launch_option(key)) {
      case LaunchOption::Threads:
        dims = std::max(dims, bindings::to_dim3(value, "threads", sig.name, &d));
        request.threads = d;
        break;
      case LaunchOption::Groups:
        dims = std::max(dims, bindings::to_dim3(value, "groups", sig.name, &d));
        request.groups = d;
        break;
      case LaunchOption::GroupSize:
        dims = std::max(dims, bindings::to_dim3(value, "group_size", sig.name, &d));
        request.group_size = d;
        break;
      case LaunchOption::ThreadgroupMemory:
        bindings::to_threadgroup_memory(value, sig.name, &request.threadgroup_memory);
        break;
      case LaunchOption::Unknown:
        throw py::type_error("kernel '" + sig.name + "' got an unexpected keyword argument '" +
                             std::string(py::str(py::handle(key))) +
                             "'; launch options are threads=, groups=, group_size= and threadgroup_memory=, "
                             "and kernel arguments are positional");
    }
  }
  request.dims = std::max(dims, 1);

  BindPolicy policy = kernel.bind_policy();
  bindings::ConvertedArgs converted;
  bindings::convert_args(args, nargs, sig, policy.memory, &converted);
  std::vector<BoundArg> bound = bind_arguments(sig, sig.structs, converted.values, policy);
  KernelLimits limits = kernel.limits();
  if (sig.max_threads_per_group && sig.max_threads_per_group < limits.max_threads_per_group)
    limits.max_threads_per_group = sig.max_threads_per_group;
  LaunchGeometry geometry = resolve_launch(request, limits, sig.name);
  bind_threadgroup_memory(sig, geometry, policy, &bound);
  g_launch_count.fetch_add(1, std::memory_order_relaxed);
  if (bindings::profiling()) [[unlikely]] {
    bindings::LaunchProbe probe(kernel, policy, geometry);
    launch(kernel, bound, geometry);
    probe.finished();
    return;
  }
  launch(kernel, bound, geometry);
}

// The Python error for what a call threw: what pybind11's dispatcher would have raised.
void set_python_error(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const Error&) {
    translate_errors(std::current_exception());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "[metalrt] unknown C++ exception in a kernel launch");
  }
}

// Kernel objects are called through vectorcall. pybind11 would call them through tp_call:
// CPython packs the arguments into a tuple and a dict, then pybind11's dispatcher copies them
// into py::args and py::kwargs and looks the C++ object up: four allocations (which also
// bring the garbage collector round more often) and about 0.3 us per launch on a desktop CPU.
// Vectorcall hands over the caller's argument array and a tuple of keyword names instead.
//
// The entry and the Kernel* live in a slot appended to each instance (KernelSlot, at
// tp_vectorcall_offset). Instances start with a zeroed slot; their first call arrives through
// tp_call, which resolves the Kernel through pybind11 once and fills the slot. The instance
// holds the shared_ptr, so the raw pointer lives as long as the slot does.
struct KernelSlot {
  vectorcallfunc call;  // first: CPython reads the entry at tp_vectorcall_offset
  Kernel* kernel;
};

KernelSlot* kernel_slot(PyObject* self) {
  return reinterpret_cast<KernelSlot*>(reinterpret_cast<char*>(self) + Py_TYPE(self)->tp_vectorcall_offset);
}

PyObject* kernel_vectorcall(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  try {
    call_kernel(*kernel_slot(self)->kernel, args, static_cast<size_t>(PyVectorcall_NARGS(nargsf)), kwnames);
  } catch (...) {
    set_python_error(std::current_exception());
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* kernel_first_call(PyObject* self, PyObject* args, PyObject* kwargs) {
  KernelSlot* slot = kernel_slot(self);
  if (!slot->call) {
    Kernel* kernel = nullptr;
    try {
      kernel = py::handle(self).cast<Kernel*>();
    } catch (...) {
      set_python_error(std::current_exception());
      return nullptr;
    }
    if (!kernel) {
      PyErr_SetString(PyExc_TypeError, "this metalrt.Kernel was not made by a Library; get kernels with lib.NAME");
      return nullptr;
    }
    slot->kernel = kernel;
    slot->call = kernel_vectorcall;
  }
  return PyVectorcall_Call(self, args, kwargs);
}

// py::custom_type_setup for Kernel and each bound subclass: runs before PyType_Ready.
void make_vectorcallable(PyHeapTypeObject* heap_type) {
  PyTypeObject* type = &heap_type->ht_type;
  type->tp_vectorcall_offset = type->tp_basicsize;
  type->tp_basicsize += static_cast<Py_ssize_t>(sizeof(KernelSlot));
  type->tp_call = kernel_first_call;
  type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
}

// ---- a test double: a backend that records launches instead of running them -------------

py::dict describe_launch(const std::vector<BoundArg>& args, const LaunchGeometry& g) {
  py::list out;
  for (const BoundArg& a : args) {
    py::dict d;
    d["param"] = a.param ? a.param->name : std::string();
    d["index"] = a.index;
    switch (a.kind) {
      case BoundArg::Kind::Buffer:
        d["kind"] = "buffer";
        d["data"] = reinterpret_cast<uintptr_t>(a.data);
        d["storage"] = reinterpret_cast<uintptr_t>(a.storage);
        d["byte_offset"] = a.byte_offset;
        d["nbytes"] = a.nbytes;
        d["memory"] = std::string(memory_kind_name(a.memory));
        d["writable"] = a.writable;
        break;
      case BoundArg::Kind::Bytes:
        d["kind"] = "bytes";
        d["bytes"] = py::bytes(static_cast<const char*>(a.bytes()), a.size);
        break;
      case BoundArg::Kind::Threadgroup:
        d["kind"] = "threadgroup";
        d["threadgroup_bytes"] = a.threadgroup_bytes;
        break;
    }
    out.append(d);
  }
  py::dict launch;
  launch["args"] = out;
  launch["dispatch_threads"] = g.dispatch_threads;
  launch["threads"] = py::make_tuple(g.threads.x, g.threads.y, g.threads.z);
  launch["groups"] = py::make_tuple(g.groups.x, g.groups.y, g.groups.z);
  launch["group_size"] = py::make_tuple(g.group_size.x, g.group_size.y, g.group_size.z);
  launch["threadgroup_memory"] = g.threadgroup_memory;
  return launch;
}

class RecordingKernel final : public Kernel {
 public:
  RecordingKernel(KernelSignature sig, KernelLimits limits, BindPolicy policy)
      : Kernel(std::move(sig)), limits_(limits), policy_(std::move(policy)) {}
  KernelLimits limits() const override { return limits_; }
  BindPolicy bind_policy() const override { return policy_; }
  bool synchronous_launch() const override { return true; }
  void launch(const std::vector<BoundArg>& args, const LaunchGeometry& geometry) override {
    last_args_ = args;
    last_geometry_ = geometry;
    ++launches_;
  }
  int launches() const { return launches_; }
  py::object last_launch() const {
    if (!launches_) return py::none();
    return describe_launch(last_args_, last_geometry_);
  }

 private:
  KernelLimits limits_;
  BindPolicy policy_;
  std::vector<BoundArg> last_args_;
  LaunchGeometry last_geometry_;
  int launches_ = 0;
};

class RecordingLibrary final : public EagerLibrary {
 public:
  RecordingLibrary(const ParsedSource& parsed, KernelLimits limits, BindPolicy policy) {
    structs_ = parsed.structs;
    for (const KernelSignature& sig : parsed.kernels) {
      add_kernel(sig.name, std::make_shared<RecordingKernel>(sig, limits, policy));
    }
  }
};

MemoryKind memory_kind(const std::string& name) {
  if (name == "cpu") return MemoryKind::Host;
  if (name == "cuda") return MemoryKind::CUDA;
  if (name == "mps") return MemoryKind::MPS;
  throw py::value_error("memory must be 'cpu', 'cuda' or 'mps', got '" + name + "'");
}

// ---- module sections -------------------------------------------------------------------------

void bind_types(py::module_& m) {
  py::class_<Param>(m, "Param", "One kernel parameter, as the signature parser read it.")
      .def_readonly("name", &Param::name)
      .def_readonly("type_text", &Param::type_text, "The type as written, e.g. 'const device float*'.")
      .def_readonly("pointee", &Param::pointee, "The element type without qualifiers: 'float4', 'Params'.")
      .def_property_readonly("type", [](const Param& p) { return p.type.name.empty() ? p.pointee : p.type.name; },
                             "Canonical name of the element (pointee, referenced or value) type.")
      .def_property_readonly("dtype",
                             [](const Param& p) -> py::object {
                               if (!p.type.known() || p.type.scalar == Scalar::Void) return py::none();
                               return py::str(std::string(dtype_name(p.type.scalar)));
                             },
                             "The tensor dtype name a buffer of this type binds to ('float32'), or None.")
      .def_property_readonly("size", [](const Param& p) { return p.type.size; }, "Bytes of one element.")
      .def_property_readonly("align", [](const Param& p) { return p.type.align; })
      .def_property_readonly("address_space", [](const Param& p) { return std::string(address_space_name(p.space)); })
      .def_property_readonly("kind", [](const Param& p) { return kind_name(p.kind); },
                             "'buffer', 'reference', 'value', 'builtin' or 'threadgroup'.")
      .def_readonly("is_const", &Param::is_const)
      .def_readonly("index", &Param::index, "[[buffer(i)]] / [[threadgroup(i)]] index; CUDA: the position.")
      .def_readonly("builtin", &Param::builtin, "For builtins, the attribute, e.g. 'thread_position_in_grid'.")
      .def_readonly("position", &Param::position)
      .def_readonly("line", &Param::line)
      .def_readonly("condition", &Param::condition)
      .def("__repr__", [](const Param& p) {
        std::string s = "Param(" + p.name + ": " + p.type_text + ", " + kind_name(p.kind);
        if (p.kind == ParamKind::Builtin) s += " " + p.builtin;
        else if (p.index >= 0) s += " " + std::to_string(p.index);
        return s + ")";
      });

  py::class_<KernelSignature>(m, "KernelSignature", "A kernel's parameters in declaration order.")
      .def_readonly("name", &KernelSignature::name, "The host name: what lib.NAME uses.")
      .def_readonly("function", &KernelSignature::function, "The C++ function name.")
      .def_property_readonly("dialect", [](const KernelSignature& s) { return dialect_name(s.dialect); })
      .def_readonly("template_args", &KernelSignature::template_args)
      .def_readonly("params", &KernelSignature::params, "Every parameter, builtins included.")
      .def_property_readonly("arguments",
                             [](const KernelSignature& s) {
                               std::vector<Param> out;
                               for (const Param* p : s.arguments()) out.push_back(*p);
                               return out;
                             },
                             "The parameters a call passes, in call order (no builtins, no threadgroup memory).")
      .def_readonly("line", &KernelSignature::line)
      .def_readonly("max_threads_per_group", &KernelSignature::max_threads_per_group)
      .def_readonly("name_expression", &KernelSignature::name_expression)
      .def_readonly("structs", &KernelSignature::structs)
      .def("__repr__", [](const KernelSignature& s) { return "<KernelSignature " + declare(s) + ">"; });

  py::class_<FunctionConstant>(m, "FunctionConstant")
      .def_readonly("name", &FunctionConstant::name)
      .def_property_readonly("type", [](const FunctionConstant& c) { return c.type.name; })
      .def_readonly("index", &FunctionConstant::index)
      .def_readonly("line", &FunctionConstant::line)
      .def("__repr__", [](const FunctionConstant& c) {
        return "FunctionConstant(" + c.type.name + " " + c.name + " [[function_constant(" + std::to_string(c.index) + ")]])";
      });

  py::class_<StructField>(m, "StructField")
      .def_readonly("name", &StructField::name)
      .def_property_readonly("type", [](const StructField& f) { return f.struct_name.empty() ? f.type.name : f.struct_name; })
      .def_property_readonly("size", [](const StructField& f) { return f.type.size; }, "Bytes of one element.")
      .def_readonly("array_len", &StructField::array_len, "0 when the field is not an array.")
      .def_readonly("offset", &StructField::offset)
      .def("__repr__", [](const StructField& f) {
        std::string t = f.struct_name.empty() ? f.type.name : f.struct_name;
        return "StructField(" + t + " " + f.name + (f.array_len ? "[" + std::to_string(f.array_len) + "]" : "") +
               " at " + std::to_string(f.offset) + ")";
      });

  py::class_<StructLayout>(m, "StructLayout", "A struct's layout with the target's sizes and alignment.")
      .def_readonly("name", &StructLayout::name)
      .def_readonly("fields", &StructLayout::fields)
      .def_readonly("size", &StructLayout::size)
      .def_readonly("align", &StructLayout::align)
      .def_readonly("complete", &StructLayout::complete, "False when some field could not be laid out.")
      .def("__repr__", [](const StructLayout& s) {
        return "StructLayout(" + s.name + ", size=" + std::to_string(s.size) + ", align=" + std::to_string(s.align) +
               (s.complete ? "" : ", incomplete") + ")";
      });

  py::class_<ParsedSource>(m, "ParsedSource", "What parse_msl / parse_cuda found in a source.")
      .def_property_readonly("dialect", [](const ParsedSource& p) { return dialect_name(p.dialect); })
      .def_readonly("preprocessed", &ParsedSource::preprocessed, "The preprocessed text, same line numbers as the input.")
      .def_readonly("kernels", &ParsedSource::kernels)
      .def_readonly("function_constants", &ParsedSource::function_constants)
      .def_readonly("structs", &ParsedSource::structs)
      .def(
          "kernel",
          [](const ParsedSource& p, const std::string& name) {
            for (const KernelSignature& k : p.kernels)
              if (k.name == name) return k;
            throw py::key_error("no kernel named '" + name + "'");
          },
          py::arg("name"))
      .def("__repr__", [](const ParsedSource& p) {
        std::string names;
        for (const KernelSignature& k : p.kernels) names += (names.empty() ? "" : ", ") + k.name;
        return std::string("<ParsedSource ") + dialect_name(p.dialect) + ": " + names + ">";
      });

  py::class_<KernelLimits>(m, "KernelLimits", "What a pipeline allows, checked before every launch.")
      .def(py::init<>())
      .def_readwrite("max_threads_per_group", &KernelLimits::max_threads_per_group)
      .def_readwrite("simd_width", &KernelLimits::simd_width)
      .def_readwrite("max_threadgroup_memory", &KernelLimits::max_threadgroup_memory)
      .def_readwrite("static_threadgroup_memory", &KernelLimits::static_threadgroup_memory)
      .def_property(
          "max_grid", [](const KernelLimits& l) { return py::make_tuple(l.max_grid[0], l.max_grid[1], l.max_grid[2]); },
          [](KernelLimits& l, std::tuple<uint64_t, uint64_t, uint64_t> g) {
            l.max_grid[0] = std::get<0>(g), l.max_grid[1] = std::get<1>(g), l.max_grid[2] = std::get<2>(g);
          })
      .def("__repr__", [](const KernelLimits& l) {
        return "KernelLimits(max_threads_per_group=" + std::to_string(l.max_threads_per_group) +
               ", simd_width=" + std::to_string(l.simd_width) +
               ", max_threadgroup_memory=" + std::to_string(l.max_threadgroup_memory) + ")";
      });

  py::class_<DeviceInfo>(m, "DeviceInfo", "What a backend reports about its device.")
      .def(py::init<>())
      .def_readwrite("backend", &DeviceInfo::backend)
      .def_readwrite("name", &DeviceInfo::name)
      .def_readwrite("target", &DeviceInfo::target)
      .def_readwrite("index", &DeviceInfo::index)
      .def_readwrite("max_threads_per_group", &DeviceInfo::max_threads_per_group)
      .def_readwrite("simd_width", &DeviceInfo::simd_width)
      .def_readwrite("max_threadgroup_memory", &DeviceInfo::max_threadgroup_memory)
      .def_readwrite("memory_bytes", &DeviceInfo::memory_bytes)
      .def_readwrite("unified_memory", &DeviceInfo::unified_memory)
      .def_readwrite("peak_bandwidth_gbs", &DeviceInfo::peak_bandwidth_gbs)
      .def("__repr__", [](const DeviceInfo& d) {
        return "DeviceInfo(backend='" + d.backend + "', name='" + d.name + "', target='" + d.target + "')";
      });
}

void bind_parsing(py::module_& m) {
  m.def(
      "parse_msl",
      [](const std::string& source, const py::object& defines, const std::string& filename) {
        PreprocessOptions options;
        options.defines = to_defines(defines);
        options.filename = filename;
        py::gil_scoped_release nogil;
        return parse_msl(source, options);
      },
      py::arg("source"), py::arg("defines") = py::none(), py::arg("filename") = "kernel.metal",
      R"doc(Parses an MSL source: kernels (with [[host_name]] template instantiations), function
constants and struct layouts. Preprocesses first, with __METAL_VERSION__ predefined and
`defines` ({name: value}) applied. Raises metalrt.CompileError naming the line and the rule for
what MSL forbids in a kernel signature.)doc");

  m.def(
      "parse_cuda",
      [](const std::string& source, const py::object& defines, const std::vector<std::string>& name_expressions,
         const std::string& filename) {
        PreprocessOptions options;
        options.defines = to_defines(defines);
        options.filename = filename;
        py::gil_scoped_release nogil;
        return parse_cuda(source, options, name_expressions);
      },
      py::arg("source"), py::arg("defines") = py::none(), py::arg("name_expressions") = std::vector<std::string>{},
      py::arg("filename") = "kernel.cu",
      R"doc(Parses a CUDA source: `extern "C" __global__` kernels, other __global__ kernels (with
a name_expression for NVRTC), and the template instantiations named in `name_expressions`
(e.g. ["scale<float>"]).)doc");

  m.def(
      "preprocess",
      [](const std::string& source, const py::object& defines, const std::string& filename, const std::string& dialect,
         bool keep_comments) {
        PreprocessOptions options;
        options.defines = to_defines(defines);
        options.filename = filename;
        options.keep_comments = keep_comments;
        if (dialect == "msl") {
          options.predefined = msl_predefined();
        } else if (dialect == "cuda") {
          options.predefined = cuda_predefined();
          std::vector<std::string> h = cuda_system_headers();
          options.system_headers.insert(options.system_headers.end(), h.begin(), h.end());
        } else {
          throw py::value_error("dialect must be 'msl' or 'cuda', got '" + dialect + "'");
        }
        py::gil_scoped_release nogil;
        return preprocess(source, options);
      },
      py::arg("source"), py::arg("defines") = py::none(), py::arg("filename") = "kernel.metal",
      py::arg("dialect") = "msl", py::arg("keep_comments") = false,
      R"doc(Runs the line-preserving preprocessor alone: output line N comes from input line N.)doc");
}

void bind_runtime(py::module_& m) {
  m.def(
      "launch_count", [] { return g_launch_count.load(std::memory_order_relaxed); },
      "Kernel launches (through Kernel.__call__, any backend) that passed the argument and launch checks, "
      "since the process started.");
  // No .def("__call__"): calls go through make_vectorcallable's slots, and a __call__
  // attribute would replace them.
  py::class_<Kernel, std::shared_ptr<Kernel>>(m, "Kernel",
                                              R"doc(A launchable kernel of a compiled Library.

kernel(*args, threads=None, groups=None, group_size=None, threadgroup_memory=None)

Launches the kernel. `args` bind in the declaration order of the kernel's parameters that are
not builtins or [[threadgroup(i)]] memory: tensors (and NumPy arrays on the sim) bind zero-copy
as buffers; numbers, tuples and bytes are converted to the declared type, range-checked.

threads: total threads per dimension (int or tuple of up to 3); edge threadgroups are partial.
groups: number of threadgroups instead of threads.
group_size: threads per threadgroup; defaults to 256 (1-D), (16, 16) or (8, 8, 4).
threadgroup_memory: {index: bytes} for each [[threadgroup(index)]] parameter.

Raises ArgumentError (naming the parameter) and LaunchError (limits, and what the backend
detects while running).)doc",
                                              py::custom_type_setup(make_vectorcallable))
      .def_property_readonly("name", [](const Kernel& k) { return k.signature().name; })
      .def_property_readonly("signature", &Kernel::signature, py::return_value_policy::reference_internal)
      .def_property_readonly("limits", &Kernel::limits)
      .def_property_readonly("backend", [](const Kernel& k) { return k.bind_policy().backend; })
      .def("__repr__", [](const Kernel& k) {
        return "<metalrt.Kernel " + declare(k.signature()) + " on " + k.bind_policy().backend + ">";
      });

  py::class_<Library, std::shared_ptr<Library>>(m, "Library", "Compiled source: a set of kernels.")
      .def("kernel_names", &Library::kernel_names)
      .def("kernel", &Library::kernel, py::arg("name"), "The kernel with this host name; ArgumentError if none.")
      .def_property_readonly("structs", &Library::structs)
      .def("__repr__", [](const Library& l) {
        std::string names;
        for (const std::string& n : l.kernel_names()) names += (names.empty() ? "" : ", ") + n;
        return "<metalrt._C.Library: " + names + ">";
      });

  py::class_<Timer, std::shared_ptr<Timer>>(m, "Timer", "Times the work submitted between start() and stop().")
      .def("start", &Timer::start)
      .def("stop", &Timer::stop)
      .def("elapsed_ms", &Timer::elapsed_ms, py::call_guard<py::gil_scoped_release>(),
           "Milliseconds between start and stop; waits for the stop point to complete.")
      .def_property_readonly("method", &Timer::method);
}

void bind_testing(py::module_& m) {
  m.def(
      "_type_info",
      [](const std::string& name, const std::string& dialect) -> py::object {
        ValueType t;
        bool found = dialect == "cuda" ? lookup_cuda_type(name, &t) : lookup_msl_type(name, &t);
        if (!found) return py::none();
        py::dict d;
        d["name"] = t.name;
        d["scalar"] = std::string(scalar_name(t.scalar));
        d["width"] = t.width;
        d["size"] = t.size;
        d["align"] = t.align;
        d["packed"] = t.packed;
        d["atomic"] = t.atomic;
        return d;
      },
      py::arg("name"), py::arg("dialect") = "msl", "The type table's entry for a type name, or None (for tests).");
  py::class_<RecordingKernel, Kernel, std::shared_ptr<RecordingKernel>>(m, "_RecordingKernel",
                                                                       py::custom_type_setup(make_vectorcallable))
      .def_property_readonly("launches", &RecordingKernel::launches)
      .def_property_readonly("last_launch", &RecordingKernel::last_launch);
  py::class_<RecordingLibrary, Library, std::shared_ptr<RecordingLibrary>>(
      m, "_RecordingLibrary",
      "A test double: a Library whose kernels bind and check arguments like any backend's, then record the launch "
      "(`kernel.last_launch`) instead of running it.")
      .def(py::init([](const ParsedSource& parsed, const std::optional<KernelLimits>& limits, const std::string& memory,
                       int device_index, bool accept_host_arrays, const std::string& backend) {
             BindPolicy policy;
             policy.memory = memory_kind(memory);
             policy.device_index = device_index;
             policy.accept_host_arrays = accept_host_arrays;
             policy.backend = backend;
             policy.threadgroup_params = parsed.dialect == Dialect::MSL;
             return std::make_shared<RecordingLibrary>(parsed, limits.value_or(KernelLimits{}), policy);
           }),
           py::arg("parsed"), py::arg("limits") = py::none(), py::arg("memory") = "cpu", py::arg("device_index") = 0,
           py::arg("accept_host_arrays") = false, py::arg("backend") = "sim");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "metalrt's native runtime: signature parsing, argument binding, launch checks, backends.";
#ifdef METALRT_VERSION
  m.attr("__version__") = METALRT_VERSION;
#endif
  py::register_exception_translator(&translate_errors);
  bind_types(m);
  bind_parsing(m);
  bind_runtime(m);
  bind_testing(m);
  bindings::bind_profile(m);
  bindings::bind_sim(m);
  bindings::bind_metal(m);
#if METALRT_WITH_CUDA
  bindings::bind_cuda(m);
#endif
}
