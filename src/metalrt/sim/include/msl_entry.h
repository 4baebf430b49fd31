// What the generated entry trampolines use to turn the executor's msim_thread into a kernel's
// arguments. The trampoline for kernel f is
//   void msim_entry_0(msim_thread* t) {
//     using F = decltype(&f);
//     f(msim::buffer_arg<msim::param_t<F, 0>>(t, 0, "x"),
//       msim::position_arg<msim::param_t<F, 1>>(t->thread_position_in_grid), ...);
//   }
// so each argument is built in exactly the C++ type the translated kernel declares (a checked
// pointer, a reference to constant data, uint / ushort2 / uint3 ...), template instantiations
// included, without the front end having to spell those types itself.
#pragma once
#include "msl_convert.h"
#include "msl_pointer.h"

namespace msim {

template <int I, class... P> struct nth;
template <class P0, class... P> struct nth<0, P0, P...> { using type = P0; };
template <int I, class P0, class... P> struct nth<I, P0, P...> : nth<I - 1, P...> {};

template <class F> struct fn_params;
template <class... P> struct fn_params<void (*)(P...)> {
  template <int I> using param = typename nth<I, P...>::type;
};
template <class F, int I> using param_t = typename fn_params<F>::template param<I>;

template <class P> struct is_ptr { static constexpr bool value = false; };
template <class T, class S> struct is_ptr<ptr<T, S>> { static constexpr bool value = true; };

template <class T> struct is_lvalue_ref { static constexpr bool value = false; };
template <class T> struct is_lvalue_ref<T&> { static constexpr bool value = true; };

// A device/constant buffer parameter: a checked pointer over the bound region, or a reference
// to the bound bytes (`constant Params& p`, `device float& out`).
template <class P> inline P buffer_arg(msim_thread* t, unsigned pos, const char* name) {
  const msim_region* r = &t->launch->args[pos];
  using V = decay_value_t<P>;
  if constexpr (is_ptr<V>::value) {
    return V::from_region(r, name);
  } else {
    static_assert(is_lvalue_ref<P>::value,
                  "a buffer parameter must be a pointer or a reference (MSL section 4)");
    using T = typename remove_reference<P>::type;
    if (__builtin_expect(r->size < sizeof(T), 0))
      failf("argument '%s' binds %lu bytes, but the parameter's type needs %lu", name,
            (unsigned long)r->size, (unsigned long)sizeof(T));
    return *reinterpret_cast<T*>(r->data);
  }
}

// A [[threadgroup(i)]] parameter: this group's block of the size given at launch.
template <class P> inline P threadgroup_arg(msim_thread* t, unsigned pos, const char* name) {
  using V = decay_value_t<P>;
  static_assert(is_ptr<V>::value, "a [[threadgroup(i)]] parameter must be a threadgroup pointer");
  return V::from_region(&t->threadgroup_args[pos], name);
}

// Positional builtins (thread_position_in_grid, ...) in the declared type: uint or ushort take
// the x component, 2-vectors x and y, 3-vectors all three.
template <class P> inline P position_arg(const uint32_t* v) {
  using V = decay_value_t<P>;
  using E = elem_t<V>;
  constexpr int n = width_v<V>;
  if constexpr (n == 1) return V(v[0]);
  else if constexpr (n == 2) return V{E(v[0]), E(v[1])};
  else return V{E(v[0]), E(v[1]), E(v[2])};
}

// Scalar builtins (thread_index_in_simdgroup, ...).
template <class P> inline P scalar_arg(uint32_t v) {
  using V = decay_value_t<P>;
  static_assert(!is_vector_v<V>, "this builtin is a scalar: declare it uint or ushort");
  return V(v);
}

}  // namespace msim

namespace msim {

// A [[function_constant(i)]] that constants= left without a value: is_function_constant_defined
// is false for it, and reading it ends the launch, as using an unset function constant is an
// error on Metal.
template <class T> struct missing_constant {
  const char* name;
  int index;
  operator T() const {
    failf("function constant '%s' (index %d) has no value: pass constants={'%s': ...} to "
          "metalrt.compile, or guard its use with is_function_constant_defined(%s)",
          name, index, name, name);
  }
};

}  // namespace msim

namespace msim {

// dispatch_simdgroups_per_threadgroup / dispatch_quadgroups_per_threadgroup: groups of `width`
// lanes in the nominal (dispatch) threadgroup size.
inline uint32_t dispatch_groups_of(const msim_thread* t, uint32_t width) {
  const uint32_t* d = t->launch->dispatch_threads_per_threadgroup;
  return (d[0] * d[1] * d[2] + width - 1) / width;
}

}  // namespace msim
