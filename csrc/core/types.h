// MSL scalar and vector types: names, sizes and alignment as the Metal Shading Language
// Specification gives them (section 2: e.g. `uint3` is 16 bytes, `packed_uint3` 12), and the
// mapping to the dtypes of tensors that bind to them. CUDA's C types map onto the same table.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace metalrt {

enum class Scalar : uint8_t {
  Bool, Char, UChar, Short, UShort, Int, UInt, Long, ULong, Half, BFloat, Float, Double,
  Void,    // `void` (CUDA `void*`), never a value
  Struct,  // a user struct; layout in StructLayout
  Opaque,  // a type we do not interpret (texture, sampler, ...)
};

std::string_view scalar_name(Scalar s);  // MSL spelling: "float", "uint", "bfloat"...
uint32_t scalar_size(Scalar s);          // bytes; 0 for Void/Struct/Opaque
bool is_integer(Scalar s);
bool is_signed(Scalar s);
bool is_floating(Scalar s);

// A value type: scalar, vector (width 2..4), packed vector, atomic of a scalar, or matrix.
struct ValueType {
  Scalar scalar = Scalar::Opaque;
  uint8_t width = 1;     // 1 for scalars
  bool packed = false;   // packed_floatN: size = width * scalar size, alignment = scalar's
  bool atomic = false;   // atomic_int, atomic_uint, atomic_float, atomic<T>
  uint32_t size = 0;     // bytes, MSL layout (a 3-vector is padded to 4 unless packed)
  uint32_t align = 0;
  std::string name;      // canonical MSL name, e.g. "float4", "packed_half3", "atomic_uint"
  uint8_t columns = 0;   // matrices (floatCxR, matrix<T, C, R>): C columns, each a `width`-vector;
                         // 0 for everything else

  bool known() const { return scalar != Scalar::Opaque && scalar != Scalar::Struct; }
};

// Look up an MSL type name ("float4", "half", "uint2", "packed_float3", "atomic_int",
// "simd_float4", "vec<float, 4>", "metal::float4", "float4x4", "matrix<half, 3, 3>"). Returns
// false when the name is not a builtin MSL value type (it may still be a user struct).
bool lookup_msl_type(std::string_view name, ValueType* out);

// CUDA spellings ("float", "unsigned int", "__half", "__nv_bfloat16", "int64_t", "float4", ...).
bool lookup_cuda_type(std::string_view name, ValueType* out);

}  // namespace metalrt
