// Argument binding: one pass over the kernel's call-order parameters, checking each value the
// caller gave against what the parameter declares. Nothing is reinterpreted: a float16 tensor
// never binds to `device float*`, 2.5 never becomes an int, -1 never becomes a uint.
#include "core/binding.h"

#include <cinttypes>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/errors.h"

namespace metalrt {

std::string_view memory_kind_name(MemoryKind m) {
  switch (m) {
    case MemoryKind::Host: return "cpu";
    case MemoryKind::CUDA: return "cuda";
    case MemoryKind::MPS: return "mps";
  }
  return "?";
}

std::string_view dtype_name(Scalar s) {
  switch (s) {
    case Scalar::Bool: return "bool";
    case Scalar::Char: return "int8";
    case Scalar::UChar: return "uint8";
    case Scalar::Short: return "int16";
    case Scalar::UShort: return "uint16";
    case Scalar::Int: return "int32";
    case Scalar::UInt: return "uint32";
    case Scalar::Long: return "int64";
    case Scalar::ULong: return "uint64";
    case Scalar::Half: return "float16";
    case Scalar::BFloat: return "bfloat16";
    case Scalar::Float: return "float32";
    case Scalar::Double: return "float64";
    default: return "an unknown element type";
  }
}

namespace {

std::string device_name(MemoryKind m, int index) {
  std::string s(memory_kind_name(m));
  if (m == MemoryKind::CUDA) s += ":" + std::to_string(index);
  return s;
}

std::string describe(const ArgValue& a) {
  switch (a.kind) {
    case ArgValue::Kind::Array: {
      std::string origin = a.origin.empty() ? "array" : a.origin;
      return "a " + origin + " of " + std::string(dtype_name(a.dtype)) + " on " + device_name(a.memory, a.device_index);
    }
    case ArgValue::Kind::Int:
      return "the int " + (a.is_unsigned_big ? std::to_string(a.u) : std::to_string(a.i));
    case ArgValue::Kind::Float: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", a.f);
      return std::string("the float ") + buf;
    }
    case ArgValue::Kind::Bool: return a.b ? "True" : "False";
    case ArgValue::Kind::Tuple: return "a tuple of " + std::to_string(a.items.size());
    case ArgValue::Kind::Bytes: return std::to_string(a.bytes.size()) + " bytes";
    case ArgValue::Kind::None: return "None";
  }
  return "?";
}

// "scale(): parameter 'y' (device float*, buffer 1)"
std::string label(const KernelSignature& sig, const Param& p) {
  std::string where = sig.dialect == Dialect::CUDA
                          ? "argument " + std::to_string(p.position)
                          : "buffer " + std::to_string(p.index);
  return sig.name + "(): parameter '" + p.name + "' (" + p.type_text + ", " + where + ")";
}

[[noreturn]] void fail(const std::string& message) { throw ArgumentError(message); }

// Who an error is about: "scale(): parameter 'n' (constant uint&, buffer 2)", plus the path into
// a struct or vector ("field 'v' element 3"). Built only when an error is raised, since binding
// runs on every launch.
struct Subject {
  const KernelSignature* sig = nullptr;
  const Param* param = nullptr;
  const std::string* fixed = nullptr;  // pack_value's caller-given prefix
  std::string path;                    // empty on the hot path: copying it allocates nothing
  int element = -1;

  std::string where() const {
    std::string s = path;
    if (element >= 0) s += (s.empty() ? "" : " ") + std::string("element ") + std::to_string(element);
    return s;
  }
  std::string str() const {
    std::string s = fixed ? *fixed : param ? label(*sig, *param) : std::string("value");
    std::string w = where();
    return w.empty() ? s : s + " " + w;
  }
  Subject at(const std::string& more) const {
    Subject s = *this;
    std::string w = where();
    s.path = w.empty() ? more : w + " " + more;
    s.element = -1;
    return s;
  }
  Subject at_element(int k) const {
    Subject s = *this;
    if (element >= 0) s.path = where();
    s.element = k;
    return s;
  }
};

// ---- numbers ---------------------------------------------------------------------------------

uint16_t float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 255) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {  // subnormal half (or zero)
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // a carry into the exponent is right
  return static_cast<uint16_t>(h);
}

uint16_t float_to_bfloat_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(x >> 16);
}

struct IntRange {
  int64_t min;
  uint64_t max;
};

IntRange int_range(Scalar s) {
  switch (s) {
    case Scalar::Char: return {INT8_MIN, INT8_MAX};
    case Scalar::UChar: return {0, UINT8_MAX};
    case Scalar::Short: return {INT16_MIN, INT16_MAX};
    case Scalar::UShort: return {0, UINT16_MAX};
    case Scalar::Int: return {INT32_MIN, INT32_MAX};
    case Scalar::UInt: return {0, UINT32_MAX};
    case Scalar::Long: return {INT64_MIN, INT64_MAX};
    case Scalar::ULong: return {0, UINT64_MAX};
    default: return {0, 1};
  }
}

void pack_scalar(const ArgValue& v, Scalar s, const Subject& who, unsigned char* dst) {
  auto type_name = [s] { return std::string(scalar_name(s)); };
  bool number = v.kind == ArgValue::Kind::Int || v.kind == ArgValue::Kind::Float || v.kind == ArgValue::Kind::Bool;
  if (!number)
    fail(who.str() + " expects a number (" + type_name() + "), got " + describe(v));
  if (s == Scalar::Bool) {
    bool b;
    if (v.kind == ArgValue::Kind::Bool) b = v.b;
    else if (v.kind == ArgValue::Kind::Int && !v.is_unsigned_big && (v.i == 0 || v.i == 1)) b = v.i == 1;
    else fail(who.str() + " expects a bool (True, False, 0 or 1), got " + describe(v));
    *dst = b ? 1 : 0;
    return;
  }
  if (is_integer(s)) {
    if (v.kind == ArgValue::Kind::Float)
      fail(who.str() + " expects an integer (" + type_name() + "), got " + describe(v) +
           "; convert it explicitly if truncation is meant");
    IntRange r = int_range(s);
    bool negative = !v.is_unsigned_big && v.kind == ArgValue::Kind::Int && v.i < 0;
    uint64_t magnitude = v.kind == ArgValue::Kind::Bool ? (v.b ? 1 : 0) : v.is_unsigned_big ? v.u : static_cast<uint64_t>(v.i);
    bool ok = negative ? v.i >= r.min : magnitude <= r.max;
    if (!ok)
      fail(who.str() + " expects " + type_name() + " in [" + std::to_string(r.min) + ", " + std::to_string(r.max) +
           "], got " + describe(v));
    uint64_t bits = negative ? static_cast<uint64_t>(v.i) : magnitude;
    std::memcpy(dst, &bits, scalar_size(s));  // little-endian: the low bytes are the value
    return;
  }
  double d = v.kind == ArgValue::Kind::Float ? v.f
             : v.kind == ArgValue::Kind::Bool ? (v.b ? 1.0 : 0.0)
             : v.is_unsigned_big ? static_cast<double>(v.u)
                                 : static_cast<double>(v.i);
  auto overflow = [&](const char* largest) {
    fail(who.str() + " expects " + type_name() + ", but " + describe(v) + " overflows it (largest finite value " + largest + ")");
  };
  switch (s) {
    case Scalar::Double: std::memcpy(dst, &d, 8); return;
    case Scalar::Float: {
      float f = static_cast<float>(d);
      if (std::isinf(f) && std::isfinite(d)) overflow("3.4028235e38");
      std::memcpy(dst, &f, 4);
      return;
    }
    case Scalar::Half: {
      float f = static_cast<float>(d);
      uint16_t h = float_to_half_bits(f);
      if ((h & 0x7fffu) == 0x7c00u && std::isfinite(d)) overflow("65504");
      std::memcpy(dst, &h, 2);
      return;
    }
    case Scalar::BFloat: {
      float f = static_cast<float>(d);
      uint16_t h = float_to_bfloat_bits(f);
      if ((h & 0x7fffu) == 0x7f80u && std::isfinite(d)) overflow("3.3895314e38");
      std::memcpy(dst, &h, 2);
      return;
    }
    default: fail(who.str() + " has a type metalrt cannot fill from a number (" + type_name() + ")");
  }
}

class Packer {
 public:
  explicit Packer(const std::map<std::string, StructLayout>* structs) : structs_(structs) {}

  // Writes `v` as `type` at dst (which has type.size bytes).
  void pack(const ArgValue& v, const ValueType& type, const Subject& who, unsigned char* dst) {
    if (v.kind == ArgValue::Kind::Bytes) {
      if (type.size != 0 && v.bytes.size() != type.size)
        fail(who.str() + " expects " + std::to_string(type.size) + " bytes (" + type_name(type) + "), got " +
             std::to_string(v.bytes.size()) + " bytes");
      std::memcpy(dst, v.bytes.data(), v.bytes.size());
      return;
    }
    if (type.scalar == Scalar::Struct) return pack_struct(v, type, who, dst);
    if (!type.known() || type.scalar == Scalar::Void)
      fail(who.str() + " has type '" + type.name + "', which metalrt cannot fill from " + describe(v) +
           "; pass bytes of the right size");
    if (type.columns) return pack_matrix(v, type, who, dst);
    if (type.width == 1) return pack_scalar(v, type.scalar, who, dst);
    if (v.kind != ArgValue::Kind::Tuple || v.items.size() != type.width)
      fail(who.str() + " expects a tuple of " + std::to_string(type.width) + " numbers (" + type.name + "), got " +
           describe(v));
    uint32_t elem = scalar_size(type.scalar);
    for (size_t k = 0; k < v.items.size(); ++k)
      pack_scalar(v.items[k], type.scalar, who.at_element(static_cast<int>(k)), dst + k * elem);
  }

 private:
  static std::string type_name(const ValueType& t) { return t.scalar == Scalar::Struct ? "struct " + t.name : t.name; }

  // A matrix is a tuple of its columns, each a tuple of numbers (column-major, as MSL stores it).
  void pack_matrix(const ArgValue& v, const ValueType& type, const Subject& who, unsigned char* dst) {
    ValueType column = type;
    column.columns = 0;
    column.size = type.size / type.columns;
    column.name = std::string(scalar_name(type.scalar)) + std::to_string(type.width);
    if (v.kind != ArgValue::Kind::Tuple || v.items.size() != type.columns)
      fail(who.str() + " expects " + type.name + " as a tuple of " + std::to_string(type.columns) + " columns (each " +
           column.name + "), or " + std::to_string(type.size) + " bytes, got " + describe(v));
    for (size_t k = 0; k < v.items.size(); ++k)
      pack(v.items[k], column, who.at("column " + std::to_string(k)), dst + k * column.size);
  }

  void pack_struct(const ArgValue& v, const ValueType& type, const Subject& who, unsigned char* dst) {
    auto it = structs_ ? structs_->find(type.name) : decltype(structs_->end()){};
    if (!structs_ || it == structs_->end() || !it->second.complete)
      fail(who.str() + " is struct " + type.name + ", whose layout metalrt could not compute; pass bytes of its size");
    const StructLayout& s = it->second;
    if (v.kind != ArgValue::Kind::Tuple)
      fail(who.str() + " expects struct " + s.name + ": a tuple of its " + std::to_string(s.fields.size()) +
           " fields (" + field_list(s) + ") or " + std::to_string(s.size) + " bytes, got " + describe(v));
    if (v.items.size() != s.fields.size())
      fail(who.str() + " expects struct " + s.name + " as a tuple of " + std::to_string(s.fields.size()) + " fields (" +
           field_list(s) + "), got a tuple of " + std::to_string(v.items.size()));
    for (size_t k = 0; k < s.fields.size(); ++k) {
      const StructField& f = s.fields[k];
      Subject field = who.at("field '" + f.name + "'");
      ValueType ft = f.type;
      if (!f.struct_name.empty()) ft.name = f.struct_name;
      unsigned char* at = dst + f.offset;
      if (!f.array_len) {
        pack(v.items[k], ft, field, at);
        continue;
      }
      const ArgValue& arr = v.items[k];
      if (arr.kind == ArgValue::Kind::Bytes) {
        ValueType whole;
        whole.size = ft.size * f.array_len;
        whole.name = ft.name + "[" + std::to_string(f.array_len) + "]";
        pack(arr, whole, field, at);
        continue;
      }
      if (arr.kind != ArgValue::Kind::Tuple || arr.items.size() != f.array_len)
        fail(field.str() + " is an array of " + std::to_string(f.array_len) + " " + ft.name + ": expects a tuple of " +
             std::to_string(f.array_len) + ", got " + describe(arr));
      for (uint32_t e = 0; e < f.array_len; ++e) pack(arr.items[e], ft, field.at_element(static_cast<int>(e)), at + e * ft.size);
    }
  }

  static std::string field_list(const StructLayout& s) {
    std::string out;
    for (const StructField& f : s.fields) out += (out.empty() ? "" : ", ") + f.name;
    return out;
  }

  const std::map<std::string, StructLayout>* structs_;
};

void pack_into(const ArgValue& v, const ValueType& type, const std::map<std::string, StructLayout>* structs,
               const Subject& who, BoundArg* out) {
  uint32_t size = type.size;
  if (v.kind == ArgValue::Kind::Bytes && size == 0) size = static_cast<uint32_t>(v.bytes.size());
  out->kind = BoundArg::Kind::Bytes;
  out->size = size;
  unsigned char* dst = out->inline_bytes;
  if (size > sizeof(out->inline_bytes)) {
    out->heap_bytes.assign(size, '\0');
    dst = reinterpret_cast<unsigned char*>(out->heap_bytes.data());
  } else {
    std::memset(out->inline_bytes, 0, sizeof(out->inline_bytes));
  }
  Packer(structs).pack(v, type, who, dst);
}

// ---- arrays --------------------------------------------------------------------------------

uint32_t element_size(const Param& p, const std::map<std::string, StructLayout>& structs) {
  if (p.type.scalar == Scalar::Struct) {
    auto it = structs.find(p.type.name);
    return it != structs.end() ? it->second.size : p.type.size;
  }
  return p.type.size;
}

void bind_array(const KernelSignature& sig, const Param& p, const ArgValue& a,
                const std::map<std::string, StructLayout>& structs, const BindPolicy& policy, BoundArg* out) {
  auto what = [&] { return label(sig, p); };
  bool memory_ok = a.memory == policy.memory || (policy.accept_host_arrays && a.memory == MemoryKind::Host);
  if (!memory_ok) {
    fail(what() + " expects a tensor on " + device_name(policy.memory, policy.device_index) + " for the " +
         policy.backend + " backend, got " + describe(a) + "; move it with .to(\"" +
         device_name(policy.memory, policy.device_index) + "\")");
  }
  if (a.memory != MemoryKind::Host && a.memory == policy.memory && a.device_index != policy.device_index)
    fail(what() + " got a tensor on " + device_name(a.memory, a.device_index) + ", but the kernel runs on " +
         device_name(policy.memory, policy.device_index));
  if (!a.contiguous)
    fail(what() + " got a non-contiguous " + (a.origin.empty() ? std::string("array") : a.origin) +
         "; the kernel sees a pointer, not strides: pass x.contiguous()");
  Scalar want = p.type.scalar;
  bool typed = p.type.known() && want != Scalar::Void;
  if (typed && a.dtype != want) {
    std::string elems = p.type.width > 1 || p.type.atomic ? " (" + p.type.name + " elements)" : "";
    fail(what() + " expects a " + std::string(dtype_name(want)) + " tensor" + elems + ", got " +
         std::string(dtype_name(a.dtype)));
  }
  uint32_t align = std::max<uint32_t>(p.type.align, 1);
  if (reinterpret_cast<uintptr_t>(a.data) % align != 0) {
    fail(what() + " got a view whose data starts " + std::to_string(a.byte_offset) +
         " bytes into its storage, which is not a multiple of the " + std::to_string(align) + "-byte alignment " +
         p.type.name + " requires; pass an aligned view or x.clone()");
  }
  uint32_t elem = element_size(p, structs);
  if (a.nbytes > 0 && a.nbytes < elem)
    fail(what() + " got a view of " + std::to_string(a.nbytes) + " bytes, smaller than one " + p.type.name + " (" +
         std::to_string(elem) + " bytes)");
  if (a.readonly && !p.is_const)
    fail(what() + " is writable, but the array passed is read-only (e.g. a NumPy array with writeable=False); pass a "
                  "writable copy, or declare the parameter `const` if the kernel only reads it");
  out->kind = BoundArg::Kind::Buffer;
  out->data = a.data;
  out->storage = a.storage;
  out->byte_offset = a.byte_offset;
  out->nbytes = a.nbytes;
  out->memory = a.memory;
  out->writable = !p.is_const && !a.readonly;
}

}  // namespace

void pack_value(const ArgValue& v, const ValueType& type, const std::string& what, BoundArg* out) {
  Subject who;
  who.fixed = &what;
  pack_into(v, type, nullptr, who, out);
}

void pack_value(const ArgValue& v, const ValueType& type, const std::map<std::string, StructLayout>& structs,
                const std::string& what, BoundArg* out) {
  Subject who;
  who.fixed = &what;
  pack_into(v, type, &structs, who, out);
}

std::vector<BoundArg> bind_arguments(const KernelSignature& sig, const std::map<std::string, StructLayout>& structs,
                                     const std::vector<ArgValue>& args, const BindPolicy& policy) {
  size_t count = 0;
  for (const Param& p : sig.params) count += p.kind != ParamKind::Builtin && p.kind != ParamKind::Threadgroup;
  if (args.size() != count) {
    std::vector<const Param*> params = sig.arguments();
    std::string names;
    for (const Param* p : params) names += (names.empty() ? "" : ", ") + p->name;
    std::string msg = sig.name + "(): expected " + std::to_string(params.size()) + " argument" +
                      (params.size() == 1 ? "" : "s") + " (" + names + "), got " + std::to_string(args.size());
    if (args.size() < params.size()) {
      std::string missing;
      for (size_t k = args.size(); k < params.size(); ++k) missing += (missing.empty() ? "'" : ", '") + params[k]->name + "'";
      msg += "; missing " + missing;
    } else {
      msg += "; " + std::to_string(args.size() - params.size()) + " extra";
    }
    throw ArgumentError(msg);
  }
  std::vector<BoundArg> out(count);
  size_t k = 0;
  for (const Param& p : sig.params) {
    if (p.kind == ParamKind::Builtin || p.kind == ParamKind::Threadgroup) continue;
    const ArgValue& a = args[k];
    BoundArg& b = out[k++];
    b.param = &p;
    b.index = p.index;
    Subject who;
    who.sig = &sig;
    who.param = &p;
    switch (p.kind) {
      case ParamKind::Buffer:
        if (a.kind == ArgValue::Kind::Array) {
          bind_array(sig, p, a, structs, policy, &b);
        } else if (a.kind == ArgValue::Kind::Bytes && p.is_const && p.space == AddressSpace::Constant) {
          // constant data passed inline (Metal's setBytes), e.g. a small lookup table
          uint32_t elem = element_size(p, structs);
          if (elem && a.bytes.size() % elem != 0)
            fail(label(sig, p) + " got " + std::to_string(a.bytes.size()) + " bytes, not a whole number of " +
                 p.type.name + " (" + std::to_string(elem) + " bytes each)");
          ValueType raw;
          raw.size = static_cast<uint32_t>(a.bytes.size());
          pack_into(a, raw, &structs, who, &b);
        } else {
          fail(label(sig, p) + " expects a tensor" +
               (p.space == AddressSpace::Constant ? std::string(" (or bytes)") : std::string()) + ", got " + describe(a));
        }
        break;
      case ParamKind::Reference:
        if (a.kind == ArgValue::Kind::Array)
          bind_array(sig, p, a, structs, policy, &b);
        else
          pack_into(a, p.type, &structs, who, &b);
        break;
      case ParamKind::Value:
        if (a.kind == ArgValue::Kind::Array)
          fail(label(sig, p) + " is passed by value and expects a number" +
               (p.type.width > 1 ? std::string(" tuple") : std::string()) + ", got " + describe(a));
        pack_into(a, p.type, &structs, who, &b);
        break;
      case ParamKind::Builtin:
      case ParamKind::Threadgroup:
        break;
    }
  }
  return out;
}

void bind_threadgroup_memory(const KernelSignature& sig, const LaunchGeometry& geometry, const BindPolicy& policy,
                             std::vector<BoundArg>* args) {
  if (!policy.threadgroup_params) return;
  size_t declared = 0;
  for (const Param& p : sig.params) {
    if (p.kind != ParamKind::Threadgroup) continue;
    ++declared;
    auto it = geometry.threadgroup_memory.find(p.index);
    if (it == geometry.threadgroup_memory.end())
      throw LaunchError(sig.name + "(): parameter '" + p.name + "' (" + p.type_text + ", threadgroup " +
                        std::to_string(p.index) + ") is sized at launch: pass threadgroup_memory={" +
                        std::to_string(p.index) + ": nbytes}");
    BoundArg b;
    b.kind = BoundArg::Kind::Threadgroup;
    b.param = &p;
    b.index = p.index;
    b.threadgroup_bytes = it->second;
    args->push_back(std::move(b));
  }
  if (geometry.threadgroup_memory.size() != declared) {
    for (const auto& [index, bytes] : geometry.threadgroup_memory) {
      bool found = false;
      for (const Param& p : sig.params) found |= p.kind == ParamKind::Threadgroup && p.index == index;
      if (!found)
        throw LaunchError(sig.name + "(): threadgroup_memory gives " + std::to_string(bytes) + " bytes for index " +
                          std::to_string(index) + ", but the kernel has no [[threadgroup(" + std::to_string(index) +
                          ")]] parameter" + (declared ? "" : " (it declares none)"));
    }
  }
}

}  // namespace metalrt
