// The floating-point functions of metal_stdlib (MSL specification 3.1, sections 6.2 common,
// 6.5 math, 6.8 geometric) in namespaces metal, metal::precise and metal::fast.
//
// Every function is a set of plain overloads, one per type (float, half, bfloat and their
// 2/3/4-vectors), as in Metal's own headers, so overload resolution accepts and rejects the
// same calls it does on a Mac: pow(x, 2) picks the float overload, max(x, 0) with a float x
// is ambiguous.
//
// half and bfloat compute through float and round the result once; float calls the C library.
// The sim is a correctness tool: it computes at least as accurately as the GPU does in precise
// mode, so fast:: and precise:: compute the same values as the plain names.
#pragma once
#include "msl_types.h"

namespace msim {

// Applies a float function element-wise, computing in float and rounding to the element type.
template <class F, class T> inline T map1(T x) {
  using E = elem_t<T>;
  if constexpr (width_v<T> == 1) {
    return E(F{}(float(x)));
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = E(F{}(float(x[i])));
    return r;
  }
}
template <class F, class T> inline T map2(T x, T y) {
  using E = elem_t<T>;
  if constexpr (width_v<T> == 1) {
    return E(F{}(float(x), float(y)));
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = E(F{}(float(x[i]), float(y[i])));
    return r;
  }
}
template <class F, class T> inline T map3(T x, T y, T z) {
  using E = elem_t<T>;
  if constexpr (width_v<T> == 1) {
    return E(F{}(float(x), float(y), float(z)));
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = E(F{}(float(x[i]), float(y[i]), float(z[i])));
    return r;
  }
}

namespace fn {
#define MSIM_FN1(NAME, EXPR) \
  struct NAME { float operator()(float x) const { return EXPR; } };
#define MSIM_FN2(NAME, EXPR) \
  struct NAME { float operator()(float x, float y) const { return EXPR; } };
#define MSIM_FN3(NAME, EXPR) \
  struct NAME { float operator()(float x, float y, float z) const { return EXPR; } };

MSIM_FN1(acos, __builtin_acosf(x))
MSIM_FN1(acosh, __builtin_acoshf(x))
MSIM_FN1(asin, __builtin_asinf(x))
MSIM_FN1(asinh, __builtin_asinhf(x))
MSIM_FN1(atan, __builtin_atanf(x))
MSIM_FN1(atanh, __builtin_atanhf(x))
MSIM_FN1(ceil, __builtin_ceilf(x))
MSIM_FN1(cos, __builtin_cosf(x))
MSIM_FN1(cosh, __builtin_coshf(x))
MSIM_FN1(cospi, __builtin_cosf(3.14159265358979323846f * x))
MSIM_FN1(exp, __builtin_expf(x))
MSIM_FN1(exp2, __builtin_exp2f(x))
MSIM_FN1(exp10, __builtin_powf(10.0f, x))
MSIM_FN1(fabs, __builtin_fabsf(x))
MSIM_FN1(floor, __builtin_floorf(x))
MSIM_FN1(fract, __builtin_fminf(x - __builtin_floorf(x), 0x1.fffffep-1f))
MSIM_FN1(log, __builtin_logf(x))
MSIM_FN1(log2, __builtin_log2f(x))
MSIM_FN1(log10, __builtin_log10f(x))
MSIM_FN1(rint, __builtin_rintf(x))
MSIM_FN1(round, __builtin_roundf(x))
MSIM_FN1(rsqrt, 1.0f / __builtin_sqrtf(x))
MSIM_FN1(saturate, __builtin_fminf(__builtin_fmaxf(x, 0.0f), 1.0f))
MSIM_FN1(sign, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x == x ? x : 0.0f)
MSIM_FN1(sin, __builtin_sinf(x))
MSIM_FN1(sinh, __builtin_sinhf(x))
MSIM_FN1(sinpi, __builtin_sinf(3.14159265358979323846f * x))
MSIM_FN1(sqrt, __builtin_sqrtf(x))
MSIM_FN1(tan, __builtin_tanf(x))
MSIM_FN1(tanh, __builtin_tanhf(x))
MSIM_FN1(tanpi, __builtin_tanf(3.14159265358979323846f * x))
MSIM_FN1(trunc, __builtin_truncf(x))

MSIM_FN2(atan2, __builtin_atan2f(x, y))
MSIM_FN2(copysign, __builtin_copysignf(x, y))
MSIM_FN2(divide, x / y)
MSIM_FN2(fdim, x > y ? x - y : (x == x && y == y) ? 0.0f : __builtin_nanf(""))
MSIM_FN2(fmax, __builtin_fmaxf(x, y))
MSIM_FN2(fmin, __builtin_fminf(x, y))
MSIM_FN2(fmod, __builtin_fmodf(x, y))
MSIM_FN2(nextafter, __builtin_nextafterf(x, y))
MSIM_FN2(pow, __builtin_powf(x, y))
MSIM_FN2(powr, __builtin_powf(x, y))
MSIM_FN2(step, y < x ? 0.0f : 1.0f)

MSIM_FN3(clamp, __builtin_fminf(__builtin_fmaxf(x, y), z))
MSIM_FN3(fma, __builtin_fmaf(x, y, z))
MSIM_FN3(fmax3, __builtin_fmaxf(__builtin_fmaxf(x, y), z))
MSIM_FN3(fmin3, __builtin_fminf(__builtin_fminf(x, y), z))
MSIM_FN3(fmedian3, __builtin_fmaxf(__builtin_fminf(x, y), __builtin_fminf(__builtin_fmaxf(x, y), z)))
MSIM_FN3(mix, x + (y - x) * z)
MSIM_FN3(smoothstep, [](float t) { return t * t * (3.0f - 2.0f * t); }(
    __builtin_fminf(__builtin_fmaxf((z - x) / (y - x), 0.0f), 1.0f)))
#undef MSIM_FN1
#undef MSIM_FN2
#undef MSIM_FN3
}  // namespace fn

template <class T> inline float dot_float(T a, T b) {
  float s = 0.0f;
  for (int i = 0; i < width_v<T>; ++i) s += float(a[i]) * float(b[i]);
  return s;
}

template <class T> inline T scale_by_inverse(T a, float d) {
  T r;
  for (int i = 0; i < width_v<T>; ++i) r[i] = elem_t<T>(float(a[i]) / d);
  return r;
}

template <class T> inline T refract_impl(T i, T n, elem_t<T> eta) {
  float e = float(eta), d = dot_float(n, i);
  float k = 1.0f - e * e * (1.0f - d * d);
  T r;
  for (int j = 0; j < width_v<T>; ++j)
    r[j] = k < 0.0f ? elem_t<T>(0) : elem_t<T>(e * float(i[j]) - (e * d + __builtin_sqrtf(k)) * float(n[j]));
  return r;
}

template <class T, class I> inline T frexp_impl(T x, I& e) {
  if constexpr (width_v<T> == 1) {
    int ex = 0;
    T m = elem_t<T>(__builtin_frexpf(float(x), &ex));
    e = ex;
    return m;
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) {
      int ex = 0;
      r[i] = elem_t<T>(__builtin_frexpf(float(x[i]), &ex));
      e[i] = ex;
    }
    return r;
  }
}

template <class T, class I> inline T ldexp_impl(T x, I e) {
  if constexpr (width_v<T> == 1) {
    return elem_t<T>(__builtin_ldexpf(float(x), e));
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = elem_t<T>(__builtin_ldexpf(float(x[i]), e[i]));
    return r;
  }
}

template <class T> inline vec_t<int, width_v<T>> ilogb_impl(T x) {
  if constexpr (width_v<T> == 1) {
    return __builtin_ilogbf(float(x));
  } else {
    vec_t<int, width_v<T>> r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = __builtin_ilogbf(float(x[i]));
    return r;
  }
}

}  // namespace msim

// MSIM_FLOAT_TYPES(M, ...) expands M(T, ...) for each floating scalar and vector type.
#define MSIM_FLOAT_TYPES(M, ...)                                                                 \
  M(float, __VA_ARGS__) M(float2, __VA_ARGS__) M(float3, __VA_ARGS__) M(float4, __VA_ARGS__)     \
  M(half, __VA_ARGS__) M(half2, __VA_ARGS__) M(half3, __VA_ARGS__) M(half4, __VA_ARGS__)         \
  M(bfloat, __VA_ARGS__) M(bfloat2, __VA_ARGS__) M(bfloat3, __VA_ARGS__) M(bfloat4, __VA_ARGS__)
#define MSIM_FLOAT_VECTORS(M, ...)                                                               \
  M(float2, __VA_ARGS__) M(float3, __VA_ARGS__) M(float4, __VA_ARGS__)                           \
  M(half2, __VA_ARGS__) M(half3, __VA_ARGS__) M(half4, __VA_ARGS__)                              \
  M(bfloat2, __VA_ARGS__) M(bfloat3, __VA_ARGS__) M(bfloat4, __VA_ARGS__)

#define MSIM_DEF1(T, NAME) \
  inline T NAME(T x) { return ::msim::map1<::msim::fn::NAME>(x); }
#define MSIM_DEF2(T, NAME) \
  inline T NAME(T x, T y) { return ::msim::map2<::msim::fn::NAME>(x, y); }
#define MSIM_DEF3(T, NAME) \
  inline T NAME(T x, T y, T z) { return ::msim::map3<::msim::fn::NAME>(x, y, z); }

// Functions with float math behind them live in metal::precise; metal and metal::fast see them
// through using-directives, so metal::sqrt, precise::sqrt and fast::sqrt are one overload set.
namespace metal {
namespace precise {
MSIM_FLOAT_TYPES(MSIM_DEF1, acos)
MSIM_FLOAT_TYPES(MSIM_DEF1, acosh)
MSIM_FLOAT_TYPES(MSIM_DEF1, asin)
MSIM_FLOAT_TYPES(MSIM_DEF1, asinh)
MSIM_FLOAT_TYPES(MSIM_DEF1, atan)
MSIM_FLOAT_TYPES(MSIM_DEF1, atanh)
MSIM_FLOAT_TYPES(MSIM_DEF1, ceil)
MSIM_FLOAT_TYPES(MSIM_DEF1, cos)
MSIM_FLOAT_TYPES(MSIM_DEF1, cosh)
MSIM_FLOAT_TYPES(MSIM_DEF1, cospi)
MSIM_FLOAT_TYPES(MSIM_DEF1, exp)
MSIM_FLOAT_TYPES(MSIM_DEF1, exp2)
MSIM_FLOAT_TYPES(MSIM_DEF1, exp10)
MSIM_FLOAT_TYPES(MSIM_DEF1, fabs)
MSIM_FLOAT_TYPES(MSIM_DEF1, floor)
MSIM_FLOAT_TYPES(MSIM_DEF1, fract)
MSIM_FLOAT_TYPES(MSIM_DEF1, log)
MSIM_FLOAT_TYPES(MSIM_DEF1, log2)
MSIM_FLOAT_TYPES(MSIM_DEF1, log10)
MSIM_FLOAT_TYPES(MSIM_DEF1, rint)
MSIM_FLOAT_TYPES(MSIM_DEF1, round)
MSIM_FLOAT_TYPES(MSIM_DEF1, rsqrt)
MSIM_FLOAT_TYPES(MSIM_DEF1, saturate)
MSIM_FLOAT_TYPES(MSIM_DEF1, sign)
MSIM_FLOAT_TYPES(MSIM_DEF1, sin)
MSIM_FLOAT_TYPES(MSIM_DEF1, sinh)
MSIM_FLOAT_TYPES(MSIM_DEF1, sinpi)
MSIM_FLOAT_TYPES(MSIM_DEF1, sqrt)
MSIM_FLOAT_TYPES(MSIM_DEF1, tan)
MSIM_FLOAT_TYPES(MSIM_DEF1, tanh)
MSIM_FLOAT_TYPES(MSIM_DEF1, tanpi)
MSIM_FLOAT_TYPES(MSIM_DEF1, trunc)
MSIM_FLOAT_TYPES(MSIM_DEF2, atan2)
MSIM_FLOAT_TYPES(MSIM_DEF2, copysign)
MSIM_FLOAT_TYPES(MSIM_DEF2, divide)
MSIM_FLOAT_TYPES(MSIM_DEF2, fdim)
MSIM_FLOAT_TYPES(MSIM_DEF2, fmax)
MSIM_FLOAT_TYPES(MSIM_DEF2, fmin)
MSIM_FLOAT_TYPES(MSIM_DEF2, fmod)
MSIM_FLOAT_TYPES(MSIM_DEF2, nextafter)
MSIM_FLOAT_TYPES(MSIM_DEF2, pow)
MSIM_FLOAT_TYPES(MSIM_DEF2, powr)
MSIM_FLOAT_TYPES(MSIM_DEF2, step)
MSIM_FLOAT_TYPES(MSIM_DEF3, fma)
MSIM_FLOAT_TYPES(MSIM_DEF3, fmax3)
MSIM_FLOAT_TYPES(MSIM_DEF3, fmin3)
MSIM_FLOAT_TYPES(MSIM_DEF3, fmedian3)
MSIM_FLOAT_TYPES(MSIM_DEF3, mix)
MSIM_FLOAT_TYPES(MSIM_DEF3, smoothstep)

// Vector forms that take a scalar for the edge or the blend factor.
#define MSIM_DEF_VS(T, NAME) \
  inline T NAME(T x, T y, ::msim::elem_t<T> a) { return NAME(x, y, T(a)); }
MSIM_FLOAT_VECTORS(MSIM_DEF_VS, mix)
#undef MSIM_DEF_VS
#define MSIM_DEF_STEP(T, _) \
  inline T step(::msim::elem_t<T> edge, T x) { return step(T(edge), x); } \
  inline T smoothstep(::msim::elem_t<T> e0, ::msim::elem_t<T> e1, T x) { return smoothstep(T(e0), T(e1), x); }
MSIM_FLOAT_VECTORS(MSIM_DEF_STEP, _)
#undef MSIM_DEF_STEP

// abs of a floating value is fabs; the integer overloads are in msl_integer.h.
#define MSIM_DEF_ABS(T, _) inline T abs(T x) { return fabs(x); }
MSIM_FLOAT_TYPES(MSIM_DEF_ABS, _)
#undef MSIM_DEF_ABS

// Functions that return a second result through a thread reference.
#define MSIM_DEF_OUT(T, _)                                                                   \
  inline T sincos(T x, T& cosval) { cosval = cos(x); return sin(x); }                        \
  inline T modf(T x, T& whole) { whole = trunc(x); return x - whole; }
MSIM_FLOAT_TYPES(MSIM_DEF_OUT, _)
#undef MSIM_DEF_OUT

#define MSIM_DEF_EXPONENT(T, _)                                                              \
  inline T frexp(T x, ::msim::vec_t<int, ::msim::width_v<T>>& e) {                             \
    return ::msim::frexp_impl(x, e);                                                         \
  }                                                                                          \
  inline T ldexp(T x, ::msim::vec_t<int, ::msim::width_v<T>> e) {                              \
    return ::msim::ldexp_impl(x, e);                                                         \
  }                                                                                          \
  inline ::msim::vec_t<int, ::msim::width_v<T>> ilogb(T x) { return ::msim::ilogb_impl(x); }
MSIM_FLOAT_TYPES(MSIM_DEF_EXPONENT, _)
#undef MSIM_DEF_EXPONENT

// ---- geometric functions (section 6.8); products are summed in float ----
#define MSIM_DEF_GEOM(T, _)                                                                    \
  inline ::msim::elem_t<T> dot(T a, T b) { return ::msim::elem_t<T>(::msim::dot_float(a, b)); } \
  inline ::msim::elem_t<T> length_squared(T a) { return dot(a, a); }                           \
  inline ::msim::elem_t<T> length(T a) {                                                       \
    return ::msim::elem_t<T>(__builtin_sqrtf(::msim::dot_float(a, a)));                        \
  }                                                                                            \
  inline ::msim::elem_t<T> distance(T a, T b) { return length(a - b); }                        \
  inline ::msim::elem_t<T> distance_squared(T a, T b) { return length_squared(a - b); }        \
  inline T normalize(T a) { return ::msim::scale_by_inverse(a, __builtin_sqrtf(::msim::dot_float(a, a))); } \
  inline T faceforward(T n, T i, T nref) { return dot(nref, i) < ::msim::elem_t<T>(0) ? n : -n; } \
  inline T reflect(T i, T n) { return i - ::msim::elem_t<T>(2) * dot(n, i) * n; }              \
  inline T refract(T i, T n, ::msim::elem_t<T> eta) { return ::msim::refract_impl(i, n, eta); }
MSIM_FLOAT_VECTORS(MSIM_DEF_GEOM, _)
#undef MSIM_DEF_GEOM

inline float3 cross(float3 a, float3 b) { return a.yzx * b.zxy - a.zxy * b.yzx; }
inline half3 cross(half3 a, half3 b) { return a.yzx * b.zxy - a.zxy * b.yzx; }
inline bfloat3 cross(bfloat3 a, bfloat3 b) { return a.yzx * b.zxy - a.zxy * b.yzx; }

}  // namespace precise

namespace fast {
using namespace precise;
}  // namespace fast
using namespace precise;

// ---- common functions on floating types that have no fast/precise forms (section 6.2) ----
#define MSIM_DEF_MINMAX(T, _)                                                                  \
  inline T min(T x, T y) { return fmin(x, y); }                                                \
  inline T max(T x, T y) { return fmax(x, y); }                                               \
  inline T min3(T x, T y, T z) { return fmin3(x, y, z); }                                      \
  inline T max3(T x, T y, T z) { return fmax3(x, y, z); }                                      \
  inline T median3(T x, T y, T z) { return fmedian3(x, y, z); }                                \
  inline T clamp(T x, T lo, T hi) { return ::msim::map3<::msim::fn::clamp>(x, lo, hi); }
MSIM_FLOAT_TYPES(MSIM_DEF_MINMAX, _)
#undef MSIM_DEF_MINMAX
#define MSIM_DEF_CLAMP_SCALAR(T, _) \
  inline T clamp(T x, ::msim::elem_t<T> lo, ::msim::elem_t<T> hi) { return clamp(x, T(lo), T(hi)); }
MSIM_FLOAT_VECTORS(MSIM_DEF_CLAMP_SCALAR, _)
#undef MSIM_DEF_CLAMP_SCALAR

// fast::max(a, b) and precise::clamp(...) name the same functions.
namespace fast {
using metal::clamp;
using metal::max;
using metal::max3;
using metal::median3;
using metal::min;
using metal::min3;
}  // namespace fast
namespace precise {
using metal::clamp;
using metal::max;
using metal::max3;
using metal::median3;
using metal::min;
using metal::min3;
}  // namespace precise

}  // namespace metal

#undef MSIM_DEF1
#undef MSIM_DEF2
#undef MSIM_DEF3
