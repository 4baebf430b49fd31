// MSL's scalar, vector and packed vector types (Metal Shading Language Specification 3.1,
// sections 2.1-2.3) as clang types, with MSL's sizes and alignment:
//   half = _Float16 and bfloat = __bf16, computed with per-operation rounding (the compiler runs
//   with -ffloat16-excess-precision=none), as the GPU computes them;
//   vectors are ext_vector_type, which gives swizzles, .lo/.hi/.even/.odd and element-wise
//   operators; a 3-vector takes the room of 4, as in MSL;
//   boolN is a vector of 1-byte elements holding 0 or 1, so it has MSL's size (clang's own bool
//   vectors are bit-packed); comparisons of vectors yield clang's integer masks (-1/0), which
//   select(), all(), any() and the boolN constructors accept as well;
//   packed_T2/packed_T4 are the vector with the scalar's alignment; packed_T3 is a 3-element
//   struct (12 bytes for float), convertible to and from T3.
// Every type is declared at global scope (MSL's types need no `using namespace metal`) and
// again inside namespace metal, so `metal::float4` works too.
#pragma once

namespace msim {
template <bool B, class T = void> struct enable_if {};
template <class T> struct enable_if<true, T> { using type = T; };
template <bool B, class T = void> using enable_if_t = typename enable_if<B, T>::type;

template <class A, class B> struct is_same { static constexpr bool value = false; };
template <class A> struct is_same<A, A> { static constexpr bool value = true; };

template <class T> struct remove_cv { using type = T; };
template <class T> struct remove_cv<const T> { using type = T; };
template <class T> struct remove_cv<volatile T> { using type = T; };
template <class T> struct remove_cv<const volatile T> { using type = T; };
template <class T> using remove_cv_t = typename remove_cv<T>::type;

template <class T> struct remove_reference { using type = T; };
template <class T> struct remove_reference<T&> { using type = T; };
template <class T> struct remove_reference<T&&> { using type = T; };
template <class T> using decay_value_t = remove_cv_t<typename remove_reference<T>::type>;

template <class T> T&& declval();
}  // namespace msim

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef _Float16 half;
typedef __bf16 bfloat;
typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long int64_t;
typedef unsigned long uint64_t;
typedef half float16_t;
typedef bfloat bfloat16_t;
typedef float float32_t;

// vec<T, N> is MSL's spelling of TN; for T = bool it is the 1-byte-element boolN below.
namespace msim {
template <class T, int N> struct vec_of { using type = T __attribute__((ext_vector_type(N))); };
template <int N> struct vec_of<bool, N> { using type = unsigned char __attribute__((ext_vector_type(N))); };
}  // namespace msim
template <class T, int N> using vec = typename msim::vec_of<T, N>::type;

#define MSIM_VECTOR_TYPES(T, NAME)                                             \
  typedef T NAME##2 __attribute__((ext_vector_type(2)));                       \
  typedef T NAME##3 __attribute__((ext_vector_type(3)));                       \
  typedef T NAME##4 __attribute__((ext_vector_type(4)));                       \
  typedef T packed_##NAME##2 __attribute__((ext_vector_type(2), aligned(sizeof(T)))); \
  typedef T packed_##NAME##4 __attribute__((ext_vector_type(4), aligned(sizeof(T))));

MSIM_VECTOR_TYPES(char, char)
MSIM_VECTOR_TYPES(unsigned char, uchar)
MSIM_VECTOR_TYPES(short, short)
MSIM_VECTOR_TYPES(unsigned short, ushort)
MSIM_VECTOR_TYPES(int, int)
MSIM_VECTOR_TYPES(unsigned int, uint)
MSIM_VECTOR_TYPES(long, long)
MSIM_VECTOR_TYPES(unsigned long, ulong)
MSIM_VECTOR_TYPES(_Float16, half)
MSIM_VECTOR_TYPES(__bf16, bfloat)
MSIM_VECTOR_TYPES(float, float)
#undef MSIM_VECTOR_TYPES

typedef unsigned char bool2 __attribute__((ext_vector_type(2)));
typedef unsigned char bool3 __attribute__((ext_vector_type(3)));
typedef unsigned char bool4 __attribute__((ext_vector_type(4)));

// ---- type traits the other shim headers build on -------------------------------------------

namespace msim {

// Element type and width of a scalar (width 1) or vector type.
template <class T, class = void> struct vec_traits {
  using elem = T;
  static constexpr int width = 1;
  static constexpr bool is_vector = false;
};
template <class T, int N> struct vec_traits<T __attribute__((ext_vector_type(N)))> {
  using elem = T;
  static constexpr int width = N;
  static constexpr bool is_vector = true;
};
template <class T> using elem_t = typename vec_traits<decay_value_t<T>>::elem;
template <class T> constexpr int width_v = vec_traits<decay_value_t<T>>::width;
template <class T> constexpr bool is_vector_v = vec_traits<decay_value_t<T>>::is_vector;

template <class T> struct is_float_scalar { static constexpr bool value = false; };
template <> struct is_float_scalar<float> { static constexpr bool value = true; };
template <> struct is_float_scalar<_Float16> { static constexpr bool value = true; };
template <> struct is_float_scalar<__bf16> { static constexpr bool value = true; };

template <class T> struct is_int_scalar { static constexpr bool value = false; };
#define MSIM_INT_SCALAR(T) \
  template <> struct is_int_scalar<T> { static constexpr bool value = true; };
MSIM_INT_SCALAR(char)
MSIM_INT_SCALAR(signed char)
MSIM_INT_SCALAR(unsigned char)
MSIM_INT_SCALAR(short)
MSIM_INT_SCALAR(unsigned short)
MSIM_INT_SCALAR(int)
MSIM_INT_SCALAR(unsigned int)
MSIM_INT_SCALAR(long)
MSIM_INT_SCALAR(unsigned long)
#undef MSIM_INT_SCALAR

template <class T> constexpr bool is_float_v = is_float_scalar<elem_t<T>>::value;
template <class T> constexpr bool is_int_v = is_int_scalar<elem_t<T>>::value;
template <class T> constexpr bool is_scalar_v =
    !is_vector_v<T> && (is_float_v<T> || is_int_v<T> || is_same<decay_value_t<T>, bool>::value);

template <class T> struct make_unsigned_scalar { using type = T; };
template <> struct make_unsigned_scalar<char> { using type = unsigned char; };
template <> struct make_unsigned_scalar<signed char> { using type = unsigned char; };
template <> struct make_unsigned_scalar<short> { using type = unsigned short; };
template <> struct make_unsigned_scalar<int> { using type = unsigned int; };
template <> struct make_unsigned_scalar<long> { using type = unsigned long; };

// The vector of N elements of E (E itself when N is 1); bool elements give boolN.
template <class E, int N> struct rebind { using type = typename vec_of<E, N>::type; };
template <class E> struct rebind<E, 1> { using type = E; };
template <class E, int N> using vec_t = typename rebind<E, N>::type;

// boolN (or bool) with the width of T: what MSL's relational functions return.
template <class T> using bool_like_t = vec_t<bool, width_v<T>>;

}  // namespace msim

// ---- packed 3-vectors ---------------------------------------------------------------------

namespace msim {
// A packed 3-vector: three T's with T's alignment. MSL lets kernels read and write the elements
// ([] and .x/.y/.z), convert to and from the aligned T3, and compute with it as with a T3.
template <class T> struct packed3 {
  using vector_type = T __attribute__((ext_vector_type(3)));
  T x, y, z;

  packed3() = default;
  packed3(vector_type v) : x(v.x), y(v.y), z(v.z) {}
  packed3(T a, T b, T c) : x(a), y(b), z(c) {}
  operator vector_type() const { return vector_type{x, y, z}; }
  vector_type vector() const { return vector_type{x, y, z}; }
  T& operator[](int i) { return (&x)[i]; }
  const T& operator[](int i) const { return (&x)[i]; }
  packed3& operator=(vector_type v) { x = v.x; y = v.y; z = v.z; return *this; }
  packed3& operator+=(vector_type v) { return *this = vector() + v; }
  packed3& operator-=(vector_type v) { return *this = vector() - v; }
  packed3& operator*=(vector_type v) { return *this = vector() * v; }
  packed3& operator/=(vector_type v) { return *this = vector() / v; }
};
template <class T> struct is_packed3 { static constexpr bool value = false; };
template <class T> struct is_packed3<packed3<T>> { static constexpr bool value = true; };

// Arithmetic on packed 3-vectors computes on the unpacked vector, as MSL does.
#define MSIM_PACKED3_OP(OP)                                                                      \
  template <class T> typename packed3<T>::vector_type operator OP(packed3<T> a, packed3<T> b) {   \
    return a.vector() OP b.vector();                                                             \
  }                                                                                              \
  template <class T> typename packed3<T>::vector_type operator OP(packed3<T> a,                  \
                                                                  typename packed3<T>::vector_type b) { \
    return a.vector() OP b;                                                                      \
  }                                                                                              \
  template <class T> typename packed3<T>::vector_type operator OP(typename packed3<T>::vector_type a, \
                                                                  packed3<T> b) {                \
    return a OP b.vector();                                                                      \
  }                                                                                              \
  template <class T> typename packed3<T>::vector_type operator OP(packed3<T> a, T b) {            \
    return a.vector() OP b;                                                                      \
  }                                                                                              \
  template <class T> typename packed3<T>::vector_type operator OP(T a, packed3<T> b) {            \
    return a OP b.vector();                                                                      \
  }
MSIM_PACKED3_OP(+)
MSIM_PACKED3_OP(-)
MSIM_PACKED3_OP(*)
MSIM_PACKED3_OP(/)
#undef MSIM_PACKED3_OP
template <class T> typename packed3<T>::vector_type operator-(packed3<T> a) { return -a.vector(); }
}  // namespace msim

typedef msim::packed3<char> packed_char3;
typedef msim::packed3<unsigned char> packed_uchar3;
typedef msim::packed3<short> packed_short3;
typedef msim::packed3<unsigned short> packed_ushort3;
typedef msim::packed3<int> packed_int3;
typedef msim::packed3<unsigned int> packed_uint3;
typedef msim::packed3<long> packed_long3;
typedef msim::packed3<unsigned long> packed_ulong3;
typedef msim::packed3<_Float16> packed_half3;
typedef msim::packed3<__bf16> packed_bfloat3;
typedef msim::packed3<float> packed_float3;

// simd_ aliases (MSL 2.2.x "simd" spellings from <simd/simd.h>).
typedef float2 simd_float2;
typedef float3 simd_float3;
typedef float4 simd_float4;
typedef half2 simd_half2;
typedef half3 simd_half3;
typedef half4 simd_half4;
typedef int2 simd_int2;
typedef int3 simd_int3;
typedef int4 simd_int4;
typedef uint2 simd_uint2;
typedef uint3 simd_uint3;
typedef uint4 simd_uint4;

namespace metal {
using ::bfloat;
using ::half;
using ::uchar;
using ::uint;
using ::ulong;
using ::ushort;
using ::vec;
#define MSIM_METAL_NAMES(NAME)                                                         \
  using ::NAME##2; using ::NAME##3; using ::NAME##4;                                   \
  using ::packed_##NAME##2; using ::packed_##NAME##3; using ::packed_##NAME##4;
MSIM_METAL_NAMES(char)
MSIM_METAL_NAMES(uchar)
MSIM_METAL_NAMES(short)
MSIM_METAL_NAMES(ushort)
MSIM_METAL_NAMES(int)
MSIM_METAL_NAMES(uint)
MSIM_METAL_NAMES(long)
MSIM_METAL_NAMES(ulong)
MSIM_METAL_NAMES(half)
MSIM_METAL_NAMES(bfloat)
MSIM_METAL_NAMES(float)
#undef MSIM_METAL_NAMES
using ::bool2;
using ::bool3;
using ::bool4;
}  // namespace metal
