// Python -> ArgValue. Torch is never imported from here: a tensor can only exist once the
// caller has imported torch, so its types are looked up in sys.modules on first need.
//
// A tensor is read one of two ways, with the same result:
//  - the DLPack C exchange API (torch >= 2.10 puts it on torch.Tensor): one C call fills a
//    DLTensor (data, device, dtype, shape, strides) without a Python call, an allocation or
//    a reference; storage_offset() is the only Python-level call left. Used for exact
//    torch.Tensor and nn.Parameter objects on the CPU or a CUDA device.
//  - attribute reads (is_cpu/is_cuda, is_contiguous, dtype, numel, storage_offset, data_ptr,
//    get_device): everything else, i.e. subclasses (whose Python overrides are honoured),
//    other devices (MPS), an older torch, and any tensor the exchange API declines. This
//    path also produces every error message about a tensor.
// Each attribute read costs a torch entry (argument parsing, warning handler, torch-function
// check), 40-60 ns on a desktop CPU; six or seven per tensor were most of a launch's time.
#include "bindings/args.h"

#include <pybind11/pybind11.h>

#include <cstring>
#include <utility>

#include "core/errors.h"

namespace py = pybind11;

namespace metalrt::bindings {
namespace {

// The part of DLPack's C ABI (dlpack.h 1.2 and later, a stable C ABI) metalrt uses, declared
// here so that no torch or DLPack header is needed to build.
namespace dlpack {

enum DeviceType : int32_t { kCPU = 1, kCUDA = 2 };
enum TypeCode : uint8_t { kInt = 0, kUInt = 1, kFloat = 2, kBfloat = 4, kBool = 6 };

struct Device {
  int32_t device_type;
  int32_t device_id;
};

struct DataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct Tensor {  // DLTensor
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;  // never null from torch
  uint64_t byte_offset;
};

struct Version {
  uint32_t major;
  uint32_t minor;
};

struct ApiHeader {
  Version version;
  ApiHeader* prev_api;  // an older major version's table, if the producer keeps one
};

// DLPackExchangeAPI: published as torch.Tensor.__dlpack_c_exchange_api__, a PyCapsule named
// "dlpack_exchange_api". Fields are only ever appended within a major version.
struct ExchangeApi {
  ApiHeader header;
  void* managed_tensor_allocator;
  void* managed_tensor_from_py_object_no_sync;
  void* managed_tensor_to_py_object_no_sync;
  int (*dltensor_from_py_object_no_sync)(void* py_object, Tensor* out);  // 0, or -1 with a Python error
  int (*current_work_stream)(int32_t device_type, int32_t device_id, void** stream);
};

constexpr uint32_t kMajor = 1;
constexpr uint32_t kFirstMinorWithExchangeApi = 2;

// The table of our major version from a capsule, or nullptr.
const ExchangeApi* exchange_api(PyObject* capsule) {
  auto* header = static_cast<ApiHeader*>(PyCapsule_GetPointer(capsule, "dlpack_exchange_api"));
  if (!header) {
    PyErr_Clear();
    return nullptr;
  }
  while (header && header->version.major > kMajor) header = header->prev_api;
  if (!header || header->version.major != kMajor || header->version.minor < kFirstMinorWithExchangeApi) return nullptr;
  auto* api = reinterpret_cast<const ExchangeApi*>(header);
  return api->dltensor_from_py_object_no_sync && api->current_work_stream ? api : nullptr;
}

}  // namespace dlpack

// Interned attribute names, created once (the GIL is held whenever these run).
PyObject* intern(const char* s) { return PyUnicode_InternFromString(s); }

struct Names {
  PyObject* data_ptr = intern("data_ptr");
  PyObject* dtype = intern("dtype");
  PyObject* is_contiguous = intern("is_contiguous");
  PyObject* numel = intern("numel");
  PyObject* storage_offset = intern("storage_offset");
  PyObject* element_size = intern("element_size");
  PyObject* is_cuda = intern("is_cuda");
  PyObject* is_mps = intern("is_mps");
  PyObject* is_cpu = intern("is_cpu");
  PyObject* get_device = intern("get_device");
  PyObject* device = intern("device");
  PyObject* type = intern("type");
  PyObject* layout = intern("layout");
};

const Names& names() {
  static const Names* n = new Names();  // leaked on purpose: lives as long as the interpreter
  return *n;
}

// torch.Tensor, torch.strided and the dtype objects (singletons, compared by identity), and
// what the DLPack path needs.
struct Torch {
  PyTypeObject* tensor = nullptr;
  PyObject* strided = nullptr;
  std::vector<std::pair<PyObject*, Scalar>> dtypes;
  // The DLPack path serves these exact types: neither overrides a tensor attribute in Python,
  // so reading below them gives what the attributes would.
  PyTypeObject* plain_types[2] = {};  // torch.Tensor, torch.nn.Parameter
  const dlpack::ExchangeApi* exchange = nullptr;  // null: torch < 2.10, attribute reads only
  PyObject* storage_offset = nullptr;  // the method descriptor, called without a lookup

  bool plain(PyObject* obj) const {
    PyTypeObject* type = Py_TYPE(obj);
    return exchange && (type == plain_types[0] || type == plain_types[1]);
  }
};

// The exchange API and the storage_offset descriptor, or nothing (then every tensor takes the
// attribute path). Errors are cleared: this only decides between two correct paths.
void find_exchange_api(const py::object& torch, Torch* t) {
  PyObject* tensor = reinterpret_cast<PyObject*>(t->tensor);
  PyObject* capsule = PyObject_GetAttrString(tensor, "__dlpack_c_exchange_api__");
  PyObject* offset = PyObject_GetAttrString(tensor, "storage_offset");
  PyErr_Clear();
  const dlpack::ExchangeApi* api = capsule && PyCapsule_CheckExact(capsule) ? dlpack::exchange_api(capsule) : nullptr;
  Py_XDECREF(capsule);  // the table is static in torch, not owned by the capsule
  if (!api || !offset || !PyObject_TypeCheck(offset, &PyMethodDescr_Type)) {
    Py_XDECREF(offset);
    return;
  }
  t->exchange = api;
  t->storage_offset = offset;  // kept for the life of the process
  t->plain_types[0] = t->tensor;
  PyObject* nn = PyObject_GetAttrString(torch.ptr(), "nn");
  PyObject* parameter = nn ? PyObject_GetAttrString(nn, "Parameter") : nullptr;
  Py_XDECREF(nn);
  PyErr_Clear();
  if (parameter && PyType_Check(parameter)) t->plain_types[1] = reinterpret_cast<PyTypeObject*>(parameter);  // kept
  else Py_XDECREF(parameter);
}

// The module `name` if something already imported it, else a null object: the bindings never
// import torch or NumPy themselves.
py::object imported_module(const char* name) {
  PyObject* mod = PyImport_GetModule(py::str(name).ptr());
  if (!mod) PyErr_Clear();
  return py::reinterpret_steal<py::object>(mod);
}

const Torch* torch() {
  static Torch* loaded = nullptr;
  if (loaded) return loaded;
  py::object torch = imported_module("torch");
  if (!torch) return nullptr;
  if (!py::hasattr(torch, "Tensor") || !py::hasattr(torch, "strided")) return nullptr;  // still importing
  auto* t = new Torch();
  t->tensor = reinterpret_cast<PyTypeObject*>(py::object(torch.attr("Tensor")).release().ptr());
  t->strided = py::object(torch.attr("strided")).release().ptr();
  const std::pair<const char*, Scalar> table[] = {
      {"bool", Scalar::Bool},     {"int8", Scalar::Char},    {"uint8", Scalar::UChar},
      {"int16", Scalar::Short},   {"uint16", Scalar::UShort}, {"int32", Scalar::Int},
      {"uint32", Scalar::UInt},   {"int64", Scalar::Long},   {"uint64", Scalar::ULong},
      {"float16", Scalar::Half},  {"bfloat16", Scalar::BFloat}, {"float32", Scalar::Float},
      {"float64", Scalar::Double},
  };
  for (const auto& [name, scalar] : table)
    if (py::hasattr(torch, name)) t->dtypes.emplace_back(py::object(torch.attr(name)).release().ptr(), scalar);
  find_exchange_api(torch, t);
  loaded = t;
  return loaded;
}

// numpy.generic, for NumPy scalars (np.float32(0.5) binds as a number, not as an array).
PyTypeObject* numpy_generic() {
  static PyTypeObject* generic = nullptr;
  if (generic) return generic;
  py::object np = imported_module("numpy");
  if (!np || !py::hasattr(np, "generic")) return nullptr;
  generic = reinterpret_cast<PyTypeObject*>(py::object(np.attr("generic")).release().ptr());
  return generic;
}

// A new reference, or throws the Python error that getting it raised.
PyObject* checked(PyObject* o) {
  if (!o) throw py::error_already_set();
  return o;
}

int64_t call_int(PyObject* obj, PyObject* method) {
  PyObject* r = checked(PyObject_CallMethodNoArgs(obj, method));
  int64_t v = PyLong_AsLongLong(r);
  Py_DECREF(r);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

bool truthy(PyObject* o) {
  int r = PyObject_IsTrue(o);
  Py_DECREF(o);
  if (r < 0) throw py::error_already_set();
  return r == 1;
}

Scalar scalar_from_format(const char* format, Py_ssize_t itemsize) {
  if (!format) return Scalar::UChar;  // no format: plain bytes
  const char* f = format;
  if (*f == '@' || *f == '=' || *f == '<') ++f;
  else if (*f == '>' || *f == '!') return Scalar::Opaque;  // big-endian data would be misread
  if (f[0] == 0 || f[1] != 0) return Scalar::Opaque;       // structured or multi-field formats
  char c = f[0];
  bool is_signed = c == 'b' || c == 'h' || c == 'i' || c == 'l' || c == 'q' || c == 'n';
  bool is_unsigned = c == 'B' || c == 'H' || c == 'I' || c == 'L' || c == 'Q' || c == 'N';
  if (is_signed || is_unsigned) {
    switch (itemsize) {
      case 1: return is_signed ? Scalar::Char : Scalar::UChar;
      case 2: return is_signed ? Scalar::Short : Scalar::UShort;
      case 4: return is_signed ? Scalar::Int : Scalar::UInt;
      case 8: return is_signed ? Scalar::Long : Scalar::ULong;
      default: return Scalar::Opaque;
    }
  }
  switch (c) {
    case '?': return Scalar::Bool;
    case 'e': return Scalar::Half;
    case 'f': return Scalar::Float;
    case 'd': return Scalar::Double;
    default: return Scalar::Opaque;
  }
}

// DLPack's element type as a Scalar (Opaque where metalrt has no name for it, as the attribute
// path does) and its size in bytes. False for sub-byte types, which take the attribute path.
bool scalar_from_dlpack(dlpack::DataType t, Scalar* scalar, uint64_t* itemsize) {
  uint64_t bits = uint64_t(t.bits) * t.lanes;
  if (bits == 0 || bits % 8 != 0) return false;
  *itemsize = bits / 8;
  *scalar = Scalar::Opaque;
  if (t.lanes != 1) return true;
  const Scalar ints[] = {Scalar::Char, Scalar::Short, Scalar::Int, Scalar::Long};
  const Scalar uints[] = {Scalar::UChar, Scalar::UShort, Scalar::UInt, Scalar::ULong};
  int log2_bytes = t.bits == 8 ? 0 : t.bits == 16 ? 1 : t.bits == 32 ? 2 : t.bits == 64 ? 3 : -1;
  switch (t.code) {
    case dlpack::kInt:
      if (log2_bytes >= 0) *scalar = ints[log2_bytes];
      break;
    case dlpack::kUInt:
      if (log2_bytes >= 0) *scalar = uints[log2_bytes];
      break;
    case dlpack::kFloat:
      if (t.bits == 16) *scalar = Scalar::Half;
      else if (t.bits == 32) *scalar = Scalar::Float;
      else if (t.bits == 64) *scalar = Scalar::Double;
      break;
    case dlpack::kBfloat:
      if (t.bits == 16) *scalar = Scalar::BFloat;
      break;
    case dlpack::kBool:
      if (t.bits == 8) *scalar = Scalar::Bool;
      break;
    default: break;
  }
  return true;
}

// Tensor.is_contiguous() from sizes and strides, by torch's own rule: dimensions of size 1 are
// skipped, and a tensor without elements is contiguous.
bool is_contiguous(const dlpack::Tensor& t, uint64_t numel) {
  if (numel == 0) return true;
  int64_t expected = 1;
  for (int32_t d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] == 1) continue;
    if (t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

std::string type_name(PyObject* obj) { return Py_TYPE(obj)->tp_name; }

}  // namespace

ConvertedArgs::~ConvertedArgs() {
  for (Py_buffer& v : views_) PyBuffer_Release(&v);
}

class ArgConverter {
 public:
  ArgConverter(const KernelSignature& sig, MemoryKind expected, ConvertedArgs* out)
      : sig_(sig), expected_(expected), out_(out) {}

  ArgValue convert(PyObject* obj, size_t position, int depth) {
    ArgValue v;
    if (PyBool_Check(obj)) {
      v.kind = ArgValue::Kind::Bool;
      v.b = obj == Py_True;
      return v;
    }
    if (PyLong_Check(obj)) return from_int(obj, position);
    if (PyFloat_Check(obj)) {
      v.kind = ArgValue::Kind::Float;
      v.f = PyFloat_AS_DOUBLE(obj);
      return v;
    }
    if (const Torch* t = torch(); t && PyObject_TypeCheck(obj, t->tensor)) {
      if (depth > 0) fail(position, "a tensor inside a tuple; tuples carry numbers (vectors, struct fields)");
      return from_tensor(obj, *t, position);
    }
    if (PyTypeObject* g = numpy_generic(); g && PyObject_TypeCheck(obj, g)) return from_numpy_scalar(obj, position);
    if (PyBytes_Check(obj) || PyByteArray_Check(obj)) {
      v.kind = ArgValue::Kind::Bytes;
      const char* data = PyBytes_Check(obj) ? PyBytes_AS_STRING(obj) : PyByteArray_AS_STRING(obj);
      Py_ssize_t size = PyBytes_Check(obj) ? PyBytes_GET_SIZE(obj) : PyByteArray_GET_SIZE(obj);
      v.bytes.assign(data, static_cast<size_t>(size));
      return v;
    }
    if (PyTuple_Check(obj) || PyList_Check(obj)) {
      v.kind = ArgValue::Kind::Tuple;
      Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
      PyObject** items = PySequence_Fast_ITEMS(obj);
      v.items.reserve(static_cast<size_t>(n));
      for (Py_ssize_t k = 0; k < n; ++k) v.items.push_back(convert(items[k], position, depth + 1));
      return v;
    }
    if (obj == Py_None) return v;  // Kind::None: binding names the parameter that got it
    if (PyObject_CheckBuffer(obj)) {
      if (depth > 0) fail(position, "an array inside a tuple; tuples carry numbers (vectors, struct fields)");
      return from_buffer(obj, position);
    }
    fail(position, "an object of type '" + type_name(obj) +
                       "'; kernels take tensors, NumPy arrays, numbers, tuples of numbers and bytes");
  }

 private:
  [[noreturn]] void fail(size_t position, const std::string& what) const {
    std::vector<const Param*> params = sig_.arguments();
    std::string who = position < params.size() ? "parameter '" + params[position]->name + "'"
                                                : "argument " + std::to_string(position);
    throw ArgumentError(sig_.name + "(): " + who + " got " + what);
  }

  ArgValue from_int(PyObject* obj, size_t position) {
    ArgValue v;
    v.kind = ArgValue::Kind::Int;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (x == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (overflow == 0) {
      v.i = x;
      return v;
    }
    if (overflow > 0) {
      unsigned long long u = PyLong_AsUnsignedLongLong(obj);
      if (!(u == static_cast<unsigned long long>(-1) && PyErr_Occurred())) {
        v.u = u;
        v.is_unsigned_big = true;
        return v;
      }
      PyErr_Clear();
    }
    PyObject* repr = PyObject_Repr(obj);
    std::string text = repr ? PyUnicode_AsUTF8(repr) : "?";
    Py_XDECREF(repr);
    fail(position, "the int " + text + ", which does not fit in 64 bits");
  }

  ArgValue from_numpy_scalar(PyObject* obj, size_t position) {
    ArgValue v;
    const char* tp = Py_TYPE(obj)->tp_name;
    if (std::strcmp(tp, "numpy.bool_") == 0 || std::strcmp(tp, "numpy.bool") == 0) {
      v.kind = ArgValue::Kind::Bool;
      int r = PyObject_IsTrue(obj);
      if (r < 0) throw py::error_already_set();
      v.b = r == 1;
      return v;
    }
    if (PyIndex_Check(obj)) {
      PyObject* i = checked(PyNumber_Index(obj));
      ArgValue r = from_int(i, position);
      Py_DECREF(i);
      return r;
    }
    if (PyComplex_Check(obj) || std::strstr(tp, "complex")) fail(position, "a complex number (" + std::string(tp) + ")");
    double d = PyFloat_AsDouble(obj);
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    v.kind = ArgValue::Kind::Float;
    v.f = d;
    return v;
  }

  // Where the tensor lives. The backend's own kind is tested first: one attribute read in the
  // common case (Tensor.device would build a torch.device object, several times slower).
  void tensor_memory(PyObject* obj, size_t position, ArgValue* v) {
    const Names& n = names();
    auto has = [&](PyObject* attr) { return truthy(checked(PyObject_GetAttr(obj, attr))); };
    PyObject* first = expected_ == MemoryKind::CUDA ? n.is_cuda : expected_ == MemoryKind::MPS ? n.is_mps : n.is_cpu;
    MemoryKind kind;
    if (has(first)) kind = expected_;
    else if (expected_ != MemoryKind::Host && has(n.is_cpu)) kind = MemoryKind::Host;
    else if (expected_ != MemoryKind::CUDA && has(n.is_cuda)) kind = MemoryKind::CUDA;
    else if (expected_ != MemoryKind::MPS && has(n.is_mps)) kind = MemoryKind::MPS;
    else {
      PyObject* device = checked(PyObject_GetAttr(obj, n.device));
      PyObject* type = PyObject_GetAttr(device, n.type);
      Py_DECREF(device);
      checked(type);
      std::string k = PyUnicode_AsUTF8(type);
      Py_DECREF(type);
      fail(position, "a tensor on '" + k + "'; metalrt binds tensors on cpu, cuda and mps");
    }
    v->memory = kind;
    if (kind == MemoryKind::CUDA) v->device_index = static_cast<int>(call_int(obj, n.get_device));
  }

  // A tensor call failed: sparse and other non-strided layouts have no plain storage, which
  // deserves a message saying what to do; anything else is re-raised as it is.
  [[noreturn]] void reject_layout_or_rethrow(PyObject* obj, const Torch& t, size_t position) {
    py::error_already_set error;
    PyObject* layout = PyObject_GetAttr(obj, names().layout);
    bool strided = layout == t.strided;
    Py_XDECREF(layout);
    if (!layout) PyErr_Clear();
    if (!strided) fail(position, "a sparse or otherwise non-strided tensor; pass x.to_dense()");
    throw error;
  }

  // The DLPack path (see the top of this file). False when the attribute path must decide:
  // another device, a sub-byte dtype, or a tensor torch's export declines (sparse, meta...);
  // `v` is then untouched.
  bool from_dlpack(PyObject* obj, const Torch& t, size_t position, ArgValue* v) {
    dlpack::Tensor dl;
    if (t.exchange->dltensor_from_py_object_no_sync(obj, &dl) != 0) {
      PyErr_Clear();
      return false;
    }
    bool cuda = dl.device.device_type == dlpack::kCUDA;
    if (!cuda && dl.device.device_type != dlpack::kCPU) return false;
    Scalar dtype;
    uint64_t itemsize;
    if (!scalar_from_dlpack(dl.dtype, &dtype, &itemsize)) return false;
    uint64_t numel = 1;
    for (int32_t d = 0; d < dl.ndim; ++d) numel *= static_cast<uint64_t>(dl.shape[d]);
    PyObject* offset_obj = checked(PyObject_Vectorcall(t.storage_offset, &obj, 1, nullptr));
    int64_t offset = PyLong_AsLongLong(offset_obj);
    Py_DECREF(offset_obj);
    if (offset == -1 && PyErr_Occurred()) throw py::error_already_set();

    uintptr_t data = reinterpret_cast<uintptr_t>(dl.data) + dl.byte_offset;
    v->memory = cuda ? MemoryKind::CUDA : MemoryKind::Host;
    if (cuda) v->device_index = dl.device.device_id;
    v->contiguous = is_contiguous(dl, numel);
    v->dtype = dtype;
    v->data = reinterpret_cast<void*>(data);
    v->byte_offset = static_cast<uint64_t>(offset) * itemsize;
    v->storage = reinterpret_cast<void*>(data - v->byte_offset);
    v->nbytes = numel * itemsize;
    if (!v->data && v->nbytes) fail(position, "a tensor without storage (a meta or fake tensor)");
    return true;
  }

  ArgValue from_tensor(PyObject* obj, const Torch& t, size_t position) {
    const Names& n = names();
    ArgValue v;
    v.kind = ArgValue::Kind::Array;
    v.origin = "torch.Tensor";
    if (t.plain(obj) && from_dlpack(obj, t, position, &v)) return v;
    tensor_memory(obj, position, &v);
    PyObject* contiguous = PyObject_CallMethodNoArgs(obj, n.is_contiguous);
    if (!contiguous) reject_layout_or_rethrow(obj, t, position);
    v.contiguous = truthy(contiguous);

    PyObject* dtype = checked(PyObject_GetAttr(obj, n.dtype));
    v.dtype = Scalar::Opaque;
    for (const auto& [obj_dtype, scalar] : t.dtypes)
      if (obj_dtype == dtype) {
        v.dtype = scalar;
        break;
      }
    Py_DECREF(dtype);
    uint64_t itemsize = v.dtype == Scalar::Opaque ? static_cast<uint64_t>(call_int(obj, n.element_size)) : scalar_size(v.dtype);
    uint64_t numel = static_cast<uint64_t>(call_int(obj, n.numel));
    uint64_t offset = static_cast<uint64_t>(call_int(obj, n.storage_offset));
    PyObject* ptr = PyObject_CallMethodNoArgs(obj, n.data_ptr);
    if (!ptr) reject_layout_or_rethrow(obj, t, position);
    uintptr_t data = static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(ptr));
    Py_DECREF(ptr);
    if (PyErr_Occurred()) throw py::error_already_set();
    v.data = reinterpret_cast<void*>(data);
    v.byte_offset = offset * itemsize;
    v.storage = reinterpret_cast<void*>(data - v.byte_offset);
    v.nbytes = numel * itemsize;
    if (!v.data && v.nbytes) fail(position, "a tensor without storage (a meta or fake tensor)");
    return v;
  }

  ArgValue from_buffer(PyObject* obj, size_t position) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_RECORDS_RO) != 0) {
      PyErr_Clear();
      fail(position, "an object of type '" + type_name(obj) + "' whose buffer cannot be read");
    }
    out_->views_.push_back(view);
    ArgValue v;
    v.kind = ArgValue::Kind::Array;
    v.origin = type_name(obj);
    v.data = view.buf;
    v.storage = view.buf;
    v.nbytes = static_cast<uint64_t>(view.len);
    v.dtype = scalar_from_format(view.format, view.itemsize);
    v.memory = MemoryKind::Host;
    v.contiguous = PyBuffer_IsContiguous(&view, 'C') == 1;
    v.readonly = view.readonly != 0;
    return v;
  }

  const KernelSignature& sig_;
  MemoryKind expected_;
  ConvertedArgs* out_;
};

void convert_args(PyObject* const* items, size_t count, const KernelSignature& sig, MemoryKind expected,
                  ConvertedArgs* out) {
  ArgConverter converter(sig, expected, out);
  out->values.reserve(count);
  for (size_t k = 0; k < count; ++k) out->values.push_back(converter.convert(items[k], k, 0));
}

namespace {

uint64_t to_count(PyObject* obj, const char* what, const std::string& kernel) {
  if (PyBool_Check(obj) || !PyIndex_Check(obj))
    throw LaunchError("kernel '" + kernel + "': " + what + "= takes non-negative integers, got an object of type '" +
                      type_name(obj) + "'");
  PyObject* i = checked(PyNumber_Index(obj));
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
  Py_DECREF(i);
  if (overflow || v < 0)
    throw LaunchError("kernel '" + kernel + "': " + what + "= takes non-negative integers below 2^63, got " +
                      (overflow ? std::string("a larger one") : std::to_string(v)));
  return static_cast<uint64_t>(v);
}

}  // namespace

int to_dim3(PyObject* obj, const char* what, const std::string& kernel, Dim3* out) {
  if (PyTuple_Check(obj) || PyList_Check(obj)) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
    if (n < 1 || n > 3)
      throw LaunchError("kernel '" + kernel + "': " + what + "= takes an int or 1 to 3 ints, got " +
                        std::to_string(n) + " values");
    PyObject** items = PySequence_Fast_ITEMS(obj);
    uint64_t* dims[3] = {&out->x, &out->y, &out->z};
    for (Py_ssize_t k = 0; k < n; ++k) *dims[k] = to_count(items[k], what, kernel);
    return static_cast<int>(n);
  }
  out->x = to_count(obj, what, kernel);
  return 1;
}

bool torch_dlpack_stream(int ordinal, void** stream) {
  const Torch* t = torch();
  if (!t || !t->exchange) return false;
  if (t->exchange->current_work_stream(dlpack::kCUDA, ordinal, stream) != 0) throw py::error_already_set();
  return true;
}

void to_threadgroup_memory(PyObject* obj, const std::string& kernel, std::map<int, uint64_t>* out) {
  if (!PyDict_Check(obj))
    throw LaunchError("kernel '" + kernel + "': threadgroup_memory= takes a dict {index: bytes}, got an object of type '" +
                      type_name(obj) + "'");
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(obj, &pos, &key, &value)) {
    uint64_t index = to_count(key, "threadgroup_memory", kernel);
    uint64_t bytes = to_count(value, "threadgroup_memory", kernel);
    (*out)[static_cast<int>(index)] = bytes;
  }
}

}  // namespace metalrt::bindings
