// MSL constructors and conversions (specification 3.1, sections 2.2.3 and 2.12). The front end
// turns every `float4(...)`, `half4(v)`, `(int2)v`, `static_cast<uint4>(v)` and functional cast
// through a template type parameter into msim::make<T>(...), because clang reads a C-style or
// functional cast between two vector types of equal size as a bit cast, which MSL never does:
//   make<float4>()                  zero
//   make<float4>(x)                 x scalar: splat of float(x); x a 4-vector: element-wise
//                                   conversion (round to nearest even, float -> int truncates)
//   make<float4>(v.xy, v.zw)        concatenation of scalars and vectors, each element converted;
//                                   the element counts must add up to 4
//   make<bool4>(mask)               nonzero -> 1 (comparison masks are -1)
// as_type<T>(x) reinterprets the bits of a value of the same size (section 2.12.2).
#pragma once
#include "msl_types.h"

namespace msim {

template <class E, class S> constexpr E convert_scalar(S s) {
  if constexpr (is_same<E, bool>::value) {
    return s != S(0);
  } else if constexpr (is_same<E, unsigned char>::value && is_same<S, bool>::value) {
    return s ? 1 : 0;
  } else {
    return static_cast<E>(s);
  }
}

// Element count a constructor argument contributes.
template <class A> constexpr int arg_width() {
  using T = decay_value_t<A>;
  if constexpr (is_packed3<T>::value) return 3;
  else return vec_traits<T>::width;
}

// Writes the converted elements of `a` to out[0..width).
template <class E, class A> inline void put_elements(E* out, const A& a) {
  using T = decay_value_t<A>;
  if constexpr (is_packed3<T>::value) {
    out[0] = convert_scalar<E>(a.x);
    out[1] = convert_scalar<E>(a.y);
    out[2] = convert_scalar<E>(a.z);
  } else if constexpr (vec_traits<T>::is_vector) {
    for (int i = 0; i < vec_traits<T>::width; ++i) out[i] = convert_scalar<E>(a[i]);
  } else {
    out[0] = convert_scalar<E>(a);
  }
}

template <class... A> constexpr int total_width() { return (0 + ... + arg_width<A>()); }

// Element-wise conversion of a whole vector to V (same width).
template <class T> struct is_bool_vector { static constexpr bool value = false; };
template <> struct is_bool_vector<bool2> { static constexpr bool value = true; };
template <> struct is_bool_vector<bool3> { static constexpr bool value = true; };
template <> struct is_bool_vector<bool4> { static constexpr bool value = true; };

template <class V, class A> constexpr V convert_vector(const A& a) {
  using AE = elem_t<A>;
  if constexpr (is_bool_vector<V>::value) {
    // boolN from a mask or another vector: 0 stays 0, anything else becomes 1.
    return __builtin_convertvector(a != AE(0), V) & V(1);
  } else {
    return __builtin_convertvector(a, V);
  }
}

// T(args...) with MSL's meaning for every scalar, vector and packed type, and T(args...) for any
// other type (user structs through a template parameter).
template <class T, class... A> constexpr T make(const A&... a) {
  if constexpr (is_packed3<T>::value) {
    return T(make<typename T::vector_type>(a...));
  } else if constexpr (vec_traits<T>::is_vector) {
    using E = typename vec_traits<T>::elem;
    constexpr int N = vec_traits<T>::width;
    if constexpr (sizeof...(A) == 0) {
      return T(E(0));
    } else if constexpr (sizeof...(A) == 1 && total_width<A...>() == 1) {
      // Splat. For boolN the element is the truth value of the scalar.
      if constexpr (is_bool_vector<T>::value) return T(E(convert_scalar<bool>(a...)));
      else return T(convert_scalar<E>(a...));
    } else if constexpr (sizeof...(A) == 1 && (is_vector_v<A> && ...) && total_width<A...>() == N) {
      return convert_vector<T>(a...);
    } else if constexpr (total_width<A...>() == int(sizeof...(A)) && sizeof...(A) == N) {
      // All scalars: a brace initializer, which also works in constant expressions
      // (`constant float4 k = float4(1.0, 2.0, 3.0, 4.0);`).
      if constexpr (is_bool_vector<T>::value) return T{E(convert_scalar<bool>(a))...};
      else return T{convert_scalar<E>(a)...};
    } else {
      static_assert(total_width<A...>() == N,
                    "MSL vector constructor: the arguments must supply exactly as many elements as "
                    "the vector has (specification section 2.2.3)");
      E elems[N == 3 ? 4 : N] = {};
      int at = 0;
      ((put_elements<E>(elems + at, a), at += arg_width<A>()), ...);
      if constexpr (is_bool_vector<T>::value)
        for (int i = 0; i < N; ++i) elems[i] = elems[i] ? 1 : 0;
      T out;
      for (int i = 0; i < N; ++i) out[i] = elems[i];
      return out;
    }
  } else if constexpr (is_scalar_v<T>) {
    static_assert(sizeof...(A) <= 1, "a scalar conversion takes one argument");
    static_assert(((!is_vector_v<A>) && ...),
                  "MSL has no conversion from a vector to a scalar: take an element (v.x) instead");
    if constexpr (sizeof...(A) == 0) return T(0);
    else if constexpr ((is_packed3<decay_value_t<A>>::value || ...)) return T(a...);
    else return convert_scalar<T>(a...);
  } else {
    return T(a...);
  }
}

}  // namespace msim

namespace metal {

// as_type<T>(x): the bits of x as a T; both must have the same size (section 2.12.2).
template <class T, class S> inline T as_type(const S& s) {
  static_assert(sizeof(T) == sizeof(S),
                "as_type<T>(x) needs sizeof(T) == sizeof(x) (MSL specification section 2.12.2)");
  return __builtin_bit_cast(T, s);
}

}  // namespace metal
