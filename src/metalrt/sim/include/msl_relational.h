// Relational functions (MSL specification 3.1, section 6.4): isnan and kin return bool or boolN;
// all, any and select accept boolN and also the integer masks (-1/0) that clang's vector
// comparisons produce, since `select(a, b, x < y)` is how MSL code is written.
#pragma once
#include "msl_convert.h"
#include "msl_math.h"

namespace msim {

template <class T, class F> inline bool_like_t<T> test_each(T x, F f) {
  if constexpr (width_v<T> == 1) {
    return f(float(x));
  } else {
    bool_like_t<T> r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = f(float(x[i])) ? 1 : 0;
    return r;
  }
}

template <class E> constexpr float smallest_normal() {
  if constexpr (is_same<E, _Float16>::value) return 0x1p-14f;
  else return 0x1p-126f;  // float and bfloat share float's exponent range
}

template <class T> inline bool_like_t<T> compare_each(T x, T y, bool unordered) {
  if constexpr (width_v<T> == 1) {
    bool o = float(x) == float(x) && float(y) == float(y);
    return unordered ? !o : o;
  } else {
    bool_like_t<T> r;
    for (int i = 0; i < width_v<T>; ++i) {
      bool o = float(x[i]) == float(x[i]) && float(y[i]) == float(y[i]);
      r[i] = (unordered ? !o : o) ? 1 : 0;
    }
    return r;
  }
}

template <class C> constexpr bool is_condition_v =
    is_same<decay_value_t<C>, bool>::value || (is_vector_v<C> && is_int_v<C>);

}  // namespace msim

namespace metal {

#define MSIM_DEF_TESTS(T, _)                                                                    \
  inline ::msim::bool_like_t<T> isnan(T x) {                                                    \
    return ::msim::test_each(x, [](float v) { return v != v; });                                \
  }                                                                                             \
  inline ::msim::bool_like_t<T> isinf(T x) {                                                    \
    return ::msim::test_each(x, [](float v) { return __builtin_isinf(v) != 0; });               \
  }                                                                                             \
  inline ::msim::bool_like_t<T> isfinite(T x) {                                                 \
    return ::msim::test_each(x, [](float v) { return __builtin_isfinite(v) != 0; });            \
  }                                                                                             \
  inline ::msim::bool_like_t<T> isnormal(T x) {                                                 \
    /* normal in T's own format: half and bfloat have other exponent ranges than float */       \
    return ::msim::test_each(x, [](float v) {                                                   \
      using E = ::msim::elem_t<T>;                                                              \
      E e = E(v);                                                                               \
      float a = __builtin_fabsf(v);                                                             \
      return __builtin_isfinite(v) && a >= float(::msim::smallest_normal<E>()) && float(e) == v; \
    });                                                                                         \
  }                                                                                             \
  inline ::msim::bool_like_t<T> signbit(T x) {                                                  \
    return ::msim::test_each(x, [](float v) { return __builtin_signbit(v) != 0; });             \
  }                                                                                             \
  inline ::msim::bool_like_t<T> isordered(T x, T y) { return ::msim::compare_each(x, y, false); } \
  inline ::msim::bool_like_t<T> isunordered(T x, T y) { return ::msim::compare_each(x, y, true); }
MSIM_FLOAT_TYPES(MSIM_DEF_TESTS, _)
#undef MSIM_DEF_TESTS

// all/any over boolN or a comparison mask; on a scalar bool they return it (MSL has all(bool)).
inline bool all(bool b) { return b; }
inline bool any(bool b) { return b; }
template <class C, ::msim::enable_if_t<::msim::is_vector_v<C> && ::msim::is_int_v<C>, int> = 0>
inline bool all(C c) {
  for (int i = 0; i < ::msim::width_v<C>; ++i)
    if (!c[i]) return false;
  return true;
}
template <class C, ::msim::enable_if_t<::msim::is_vector_v<C> && ::msim::is_int_v<C>, int> = 0>
inline bool any(C c) {
  for (int i = 0; i < ::msim::width_v<C>; ++i)
    if (c[i]) return true;
  return false;
}

// select(a, b, c): c ? b : a, element by element (section 6.4).
template <class T, ::msim::enable_if_t<::msim::is_scalar_v<T>, int> = 0>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}
template <class T, class C,
          ::msim::enable_if_t<::msim::is_vector_v<T> && ::msim::is_condition_v<C>, int> = 0>
inline T select(T a, T b, C c) {
  if constexpr (::msim::is_vector_v<C>) {
    static_assert(::msim::width_v<C> == ::msim::width_v<T>,
                  "select(a, b, c): c must have as many elements as a and b");
    T r;
    for (int i = 0; i < ::msim::width_v<T>; ++i) r[i] = c[i] ? b[i] : a[i];
    return r;
  } else {
    return c ? b : a;
  }
}

}  // namespace metal
