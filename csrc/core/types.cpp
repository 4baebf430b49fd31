// The MSL and CUDA value-type tables. Sizes and alignment follow the Metal Shading Language
// Specification (section 2): a vector of N elements is N * sizeof(T) bytes and aligned to its
// size, except that 3-vectors take the room of 4; packed vectors are N * sizeof(T) and aligned
// like T. CUDA's vector types differ (float3 is 12 bytes, aligned to 4), so they get their own
// table built on the same scalars.
#include "core/types.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>

namespace metalrt {
namespace {

struct ScalarInfo {
  const char* name;
  uint32_t size;
  bool integer, is_signed, floating;
};

// Indexed by Scalar.
constexpr ScalarInfo kScalars[] = {
    {"bool", 1, false, false, false},  {"char", 1, true, true, false},
    {"uchar", 1, true, false, false},  {"short", 2, true, true, false},
    {"ushort", 2, true, false, false}, {"int", 4, true, true, false},
    {"uint", 4, true, false, false},   {"long", 8, true, true, false},
    {"ulong", 8, true, false, false},  {"half", 2, false, true, true},
    {"bfloat", 2, false, true, true},  {"float", 4, false, true, true},
    {"double", 8, false, true, true},  {"void", 0, false, false, false},
    {"struct", 0, false, false, false}, {"opaque", 0, false, false, false},
};

const ScalarInfo& info(Scalar s) { return kScalars[static_cast<int>(s)]; }

// Removes whitespace so that "vec< float, 4 >" and "vec<float,4>" look the same, but keeps one
// space between two words ("unsigned int").
std::string squeeze(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      pending_space = !out.empty();
      continue;
    }
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (pending_space && word && !out.empty() &&
        (std::isalnum(static_cast<unsigned char>(out.back())) || out.back() == '_'))
      out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

ValueType make_scalar(Scalar s, std::string name) {
  ValueType t;
  t.scalar = s;
  t.size = t.align = scalar_size(s);
  t.name = std::move(name);
  return t;
}

ValueType make_msl_vector(Scalar s, int width, bool packed) {
  ValueType t;
  t.scalar = s;
  t.width = static_cast<uint8_t>(width);
  t.packed = packed;
  uint32_t elem = scalar_size(s);
  if (packed) {
    t.size = elem * width;
    t.align = elem;
  } else {
    t.size = elem * (width == 3 ? 4 : width);
    t.align = t.size;
  }
  t.name = std::string(packed ? "packed_" : "") + std::string(scalar_name(s)) + std::to_string(width);
  return t;
}

ValueType make_matrix(Scalar s, int columns, int rows) {
  ValueType t = make_msl_vector(s, rows, false);
  t.columns = static_cast<uint8_t>(columns);
  t.size *= columns;  // the alignment stays the column's
  t.name = std::string(scalar_name(s)) + std::to_string(columns) + "x" + std::to_string(rows);
  return t;
}

ValueType make_atomic(Scalar s) {
  ValueType t = make_scalar(s, "atomic_" + std::string(scalar_name(s)));
  t.atomic = true;
  return t;
}

// MSL scalar spellings, including the <stdint.h>-style aliases MSL provides.
const std::unordered_map<std::string, Scalar>& msl_scalars() {
  static const std::unordered_map<std::string, Scalar> table = {
      {"bool", Scalar::Bool},       {"char", Scalar::Char},         {"int8_t", Scalar::Char},
      {"signed char", Scalar::Char}, {"uchar", Scalar::UChar},      {"unsigned char", Scalar::UChar},
      {"uint8_t", Scalar::UChar},   {"short", Scalar::Short},       {"int16_t", Scalar::Short},
      {"ushort", Scalar::UShort},   {"unsigned short", Scalar::UShort}, {"uint16_t", Scalar::UShort},
      {"int", Scalar::Int},         {"int32_t", Scalar::Int},       {"signed int", Scalar::Int},
      {"signed", Scalar::Int},      {"uint", Scalar::UInt},         {"unsigned int", Scalar::UInt},
      {"unsigned", Scalar::UInt},   {"uint32_t", Scalar::UInt},     {"long", Scalar::Long},
      {"int64_t", Scalar::Long},    {"ptrdiff_t", Scalar::Long},    {"ulong", Scalar::ULong},
      {"unsigned long", Scalar::ULong}, {"uint64_t", Scalar::ULong}, {"size_t", Scalar::ULong},
      {"half", Scalar::Half},       {"bfloat", Scalar::BFloat},     {"bfloat16_t", Scalar::BFloat},
      {"float", Scalar::Float},     {"float32_t", Scalar::Float},   {"float16_t", Scalar::Half},
      {"double", Scalar::Double},   {"void", Scalar::Void},
  };
  return table;
}

// Element types that have MSL vector forms (`boolN` included; `packed_boolN` is not a type).
bool msl_vector_element(std::string_view base, Scalar* s) {
  static const std::unordered_map<std::string_view, Scalar> table = {
      {"bool", Scalar::Bool},     {"char", Scalar::Char},   {"uchar", Scalar::UChar},
      {"short", Scalar::Short},   {"ushort", Scalar::UShort}, {"int", Scalar::Int},
      {"uint", Scalar::UInt},     {"long", Scalar::Long},   {"ulong", Scalar::ULong},
      {"half", Scalar::Half},     {"bfloat", Scalar::BFloat}, {"float", Scalar::Float},
  };
  auto it = table.find(base);
  if (it == table.end()) return false;
  *s = it->second;
  return true;
}

bool lookup_msl_scalar(const std::string& name, ValueType* out) {
  auto it = msl_scalars().find(name);
  if (it == msl_scalars().end()) return false;
  *out = make_scalar(it->second, std::string(scalar_name(it->second)));
  return true;
}

// "float4", "packed_half3": splits the trailing width off a vector name.
bool lookup_msl_vector(std::string_view name, ValueType* out) {
  bool packed = false;
  if (name.substr(0, 7) == "packed_") {
    packed = true;
    name.remove_prefix(7);
  }
  if (name.size() < 2) return false;
  char last = name.back();
  if (last < '2' || last > '4') return false;
  Scalar s;
  if (!msl_vector_element(name.substr(0, name.size() - 1), &s)) return false;
  if (packed && s == Scalar::Bool) return false;
  *out = make_msl_vector(s, last - '0', packed);
  return true;
}

// Splits "vec<float,4>" into its template name and arguments; false if not a template-id.
bool split_template(const std::string& name, std::string* base, std::string* a, std::string* b) {
  size_t lt = name.find('<');
  if (lt == std::string::npos || name.back() != '>') return false;
  *base = name.substr(0, lt);
  std::string inner = name.substr(lt + 1, name.size() - lt - 2);
  size_t comma = inner.rfind(',');
  if (comma == std::string::npos) {
    *a = squeeze(inner);
    b->clear();
  } else {
    *a = squeeze(inner.substr(0, comma));
    *b = squeeze(inner.substr(comma + 1));
  }
  return true;
}

bool is_atomic_scalar(Scalar s) {
  // MSL atomics: int, uint, bool, ulong (min/max only) and, since Metal 3, float.
  return s == Scalar::Int || s == Scalar::UInt || s == Scalar::Bool || s == Scalar::ULong ||
         s == Scalar::Float;
}

}  // namespace

std::string_view scalar_name(Scalar s) { return info(s).name; }
uint32_t scalar_size(Scalar s) { return info(s).size; }
bool is_integer(Scalar s) { return info(s).integer; }
bool is_signed(Scalar s) { return info(s).is_signed; }
bool is_floating(Scalar s) { return info(s).floating; }

bool lookup_msl_type(std::string_view raw, ValueType* out) {
  std::string name = squeeze(raw);
  // `metal::float4`, `::metal::half`; `simd::float4` is the same type on the GPU side.
  for (std::string_view prefix : {"::", "metal::", "simd::"})
    if (name.compare(0, prefix.size(), prefix) == 0) name.erase(0, prefix.size());
  if (name.compare(0, 5, "simd_") == 0 && name.find('<') == std::string::npos) {
    // simd_float4 and friends alias the vector types (they come from <simd/simd.h>).
    ValueType t;
    if (lookup_msl_vector(name.substr(5), &t) && !t.packed) {
      *out = t;
      return true;
    }
  }
  if (lookup_msl_scalar(name, out)) return true;
  if (lookup_msl_vector(name, out)) return true;

  if (name.compare(0, 7, "atomic_") == 0) {
    ValueType t;
    if (!lookup_msl_scalar(name.substr(7), &t) || !is_atomic_scalar(t.scalar)) return false;
    *out = make_atomic(t.scalar);
    return true;
  }

  // floatCxR / halfCxR: C columns of R-element vectors, laid out like an array of them.
  if (name.size() >= 7 && name[name.size() - 2] == 'x' && name.find('<') == std::string::npos) {
    std::string elem = name.substr(0, name.size() - 3);
    int cols = name[name.size() - 3] - '0', rows = name.back() - '0';
    if ((elem == "float" || elem == "half") && cols >= 2 && cols <= 4 && rows >= 2 && rows <= 4) {
      *out = make_matrix(elem == "float" ? Scalar::Float : Scalar::Half, cols, rows);
      return true;
    }
  }

  std::string base, a, b;
  if (!split_template(name, &base, &a, &b)) return false;
  if (base == "matrix" || base == "metal::matrix") {
    // matrix<T, C, R>: split_template kept "T, C" together in `a`.
    size_t comma = a.rfind(',');
    if (comma == std::string::npos || b.size() != 1) return false;
    std::string elem = a.substr(0, comma), cols = a.substr(comma + 1);
    ValueType e;
    if (cols.size() != 1 || !lookup_msl_scalar(elem, &e)) return false;
    int c = cols[0] - '0', r = b[0] - '0';
    if ((e.scalar != Scalar::Float && e.scalar != Scalar::Half) || c < 2 || c > 4 || r < 2 || r > 4) return false;
    *out = make_matrix(e.scalar, c, r);
    return true;
  }
  for (std::string_view prefix : {"metal::"})
    if (base.compare(0, prefix.size(), prefix) == 0) base.erase(0, prefix.size());
  if (base == "vec" || base == "packed_vec") {
    ValueType elem;
    if (b.empty() || !lookup_msl_scalar(a, &elem)) return false;
    if (b.size() != 1 || b[0] < '1' || b[0] > '4') return false;
    int width = b[0] - '0';
    if (width == 1) {
      *out = elem;
      return true;
    }
    Scalar s;
    if (!msl_vector_element(scalar_name(elem.scalar), &s)) return false;
    *out = make_msl_vector(s, width, base == "packed_vec");
    return true;
  }
  if (base == "atomic" && b.empty()) {
    ValueType elem;
    if (!lookup_msl_type(a, &elem) || elem.width != 1 || elem.atomic || !is_atomic_scalar(elem.scalar))
      return false;
    *out = make_atomic(elem.scalar);
    return true;
  }
  return false;
}

bool lookup_cuda_type(std::string_view raw, ValueType* out) {
  std::string name = squeeze(raw);
  if (name.compare(0, 2, "::") == 0) name.erase(0, 2);
  if (name.compare(0, 5, "std::") == 0) name.erase(0, 5);
  // On the 64-bit targets CUDA supports, long is 64 bits (LP64) and plain char is signed.
  static const std::unordered_map<std::string, Scalar> scalars = {
      {"bool", Scalar::Bool},
      {"char", Scalar::Char},
      {"signed char", Scalar::Char},
      {"int8_t", Scalar::Char},
      {"unsigned char", Scalar::UChar},
      {"uint8_t", Scalar::UChar},
      {"short", Scalar::Short},
      {"short int", Scalar::Short},
      {"signed short", Scalar::Short},
      {"int16_t", Scalar::Short},
      {"unsigned short", Scalar::UShort},
      {"unsigned short int", Scalar::UShort},
      {"uint16_t", Scalar::UShort},
      {"int", Scalar::Int},
      {"signed", Scalar::Int},
      {"signed int", Scalar::Int},
      {"int32_t", Scalar::Int},
      {"unsigned", Scalar::UInt},
      {"unsigned int", Scalar::UInt},
      {"uint32_t", Scalar::UInt},
      {"long", Scalar::Long},
      {"long int", Scalar::Long},
      {"long long", Scalar::Long},
      {"long long int", Scalar::Long},
      {"signed long", Scalar::Long},
      {"signed long long", Scalar::Long},
      {"int64_t", Scalar::Long},
      {"ptrdiff_t", Scalar::Long},
      {"intptr_t", Scalar::Long},
      {"unsigned long", Scalar::ULong},
      {"unsigned long int", Scalar::ULong},
      {"unsigned long long", Scalar::ULong},
      {"unsigned long long int", Scalar::ULong},
      {"uint64_t", Scalar::ULong},
      {"size_t", Scalar::ULong},
      {"uintptr_t", Scalar::ULong},
      {"__half", Scalar::Half},
      {"half", Scalar::Half},
      {"__nv_bfloat16", Scalar::BFloat},
      {"nv_bfloat16", Scalar::BFloat},
      {"float", Scalar::Float},
      {"double", Scalar::Double},
      {"void", Scalar::Void},
  };
  auto it = scalars.find(name);
  if (it != scalars.end()) {
    *out = make_scalar(it->second, name);
    return true;
  }

  // Two-element half types and the vector_types.h family: <base><N>, N in 1..4. Alignment is
  // the vector's size for 1, 2 and 4 elements (capped at 16); 3-vectors are unpadded.
  static const std::unordered_map<std::string, ValueType> pairs = [] {
    std::unordered_map<std::string, ValueType> m;
    ValueType h2 = make_scalar(Scalar::Half, "__half2");
    h2.width = 2, h2.size = h2.align = 4;
    m["__half2"] = m["half2"] = h2;
    ValueType b2 = make_scalar(Scalar::BFloat, "__nv_bfloat162");
    b2.width = 2, b2.size = b2.align = 4;
    m["__nv_bfloat162"] = m["nv_bfloat162"] = b2;
    return m;
  }();
  auto p = pairs.find(name);
  if (p != pairs.end()) {
    *out = p->second;
    return true;
  }

  static const std::pair<const char*, Scalar> bases[] = {
      {"char", Scalar::Char},   {"uchar", Scalar::UChar},         {"short", Scalar::Short},
      {"ushort", Scalar::UShort}, {"int", Scalar::Int},           {"uint", Scalar::UInt},
      {"long", Scalar::Long},   {"ulong", Scalar::ULong},         {"longlong", Scalar::Long},
      {"ulonglong", Scalar::ULong}, {"float", Scalar::Float},     {"double", Scalar::Double},
  };
  if (name.size() < 2) return false;
  char last = name.back();
  if (last < '1' || last > '4') return false;
  std::string base = name.substr(0, name.size() - 1);
  for (const auto& [b, s] : bases) {
    if (base != b) continue;
    int width = last - '0';
    ValueType t = make_scalar(s, name);
    t.width = static_cast<uint8_t>(width);
    t.size = scalar_size(s) * width;
    t.align = width == 3 ? scalar_size(s) : std::min<uint32_t>(t.size, 16);
    *out = t;
    return true;
  }
  return false;
}

}  // namespace metalrt
