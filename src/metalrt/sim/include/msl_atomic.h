// MSL atomics (specification 3.1, section 6.15, and the atomic types of section 2): atomic<T>
// for int, uint, bool, ulong and float, operated on only through the *_explicit functions.
// What MSL allows, and nothing more:
//   int, uint:  load, store, exchange, compare_exchange_weak, fetch_add/sub/and/or/xor/min/max
//   bool:       load, store, exchange, compare_exchange_weak
//   ulong:      load, store, fetch_min, fetch_max (MSL 2.4, device memory)
//   float:      load, store, exchange, compare_exchange_weak, fetch_add, fetch_sub (MSL 3.0,
//               device memory only: the front end rejects threadgroup atomic_float)
// Every operation is a real atomic (relaxed), since threadgroups run in parallel on several
// CPU threads; MSL's only memory order for these functions is memory_order_relaxed.
#pragma once
#include "msl_pointer.h"

namespace metal {

enum memory_order {
  memory_order_relaxed = __ATOMIC_RELAXED,
  memory_order_acquire = __ATOMIC_ACQUIRE,
  memory_order_release = __ATOMIC_RELEASE,
  memory_order_acq_rel = __ATOMIC_ACQ_REL,
  memory_order_seq_cst = __ATOMIC_SEQ_CST,
};

template <class T> struct atomic {
  static_assert(::msim::is_same<T, int>::value || ::msim::is_same<T, unsigned int>::value ||
                    ::msim::is_same<T, bool>::value || ::msim::is_same<T, unsigned long>::value ||
                    ::msim::is_same<T, float>::value,
                "MSL has atomic<T> for int, uint, bool, ulong and float only (section 6.15)");
  using value_type = T;
  alignas(sizeof(T)) T value_;
};

typedef atomic<int> atomic_int;
typedef atomic<unsigned int> atomic_uint;
typedef atomic<bool> atomic_bool;
typedef atomic<unsigned long> atomic_ulong;
typedef atomic<float> atomic_float;

}  // namespace metal

using metal::atomic_bool;
using metal::atomic_float;
using metal::atomic_int;
using metal::atomic_uint;
using metal::atomic_ulong;

namespace msim {

template <class A> struct atomic_info { static constexpr bool valid = false; };
template <class T> struct atomic_info<metal::atomic<T>> {
  static constexpr bool valid = true;
  using value = T;
};
template <class T> struct atomic_info<volatile metal::atomic<T>> : atomic_info<metal::atomic<T>> {};
template <class T> struct atomic_info<const metal::atomic<T>> : atomic_info<metal::atomic<T>> {};
template <class T> struct atomic_info<const volatile metal::atomic<T>> : atomic_info<metal::atomic<T>> {};

template <class A> using atomic_value_t = typename atomic_info<A>::value;

// The object an atomic function operates on: raw addresses come from &buf[i] (already checked
// by the pointer that produced them) or from threadgroup variables; checked pointers are
// checked here.
template <class A> inline A* atomic_target(A* a) { return a; }
template <class A, class S> inline A* atomic_target(const ptr<A, S>& p) { return &*p; }

template <class A> struct atomic_target_info;
template <class A> struct atomic_target_info<A*> : atomic_info<A> {};
template <class A, class S> struct atomic_target_info<ptr<A, S>> : atomic_info<A> {};
template <class P> using atomic_target_value_t = typename atomic_target_info<decay_value_t<P>>::value;

template <class P> constexpr bool is_atomic_target_v = atomic_target_info<decay_value_t<P>>::valid;

template <class T> constexpr bool is_32bit_int_v = is_same<T, int>::value || is_same<T, unsigned>::value;

template <class T> inline unsigned float_bits(T v) { return __builtin_bit_cast(unsigned, v); }

// fetch-op on a float through a compare-and-swap of its bits.
template <class A, class F> inline float float_fetch_op(A* a, float v, F op) {
  auto* bits = reinterpret_cast<volatile unsigned*>(const_cast<float*>(&a->value_));
  unsigned old = __atomic_load_n(bits, __ATOMIC_RELAXED);
  while (true) {
    unsigned desired = float_bits(op(__builtin_bit_cast(float, old), v));
    if (__atomic_compare_exchange_n(bits, &old, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      return __builtin_bit_cast(float, old);
  }
}

}  // namespace msim

// The template head shared by every atomic function: P is a raw pointer to an atomic or a
// checked pointer to one, T its value type. Operands are spelled atomic_target_value_t<P> so
// that only the object deduces (atomic_fetch_add_explicit(&counter, 1, ...) on an atomic_uint).
#define MSIM_ATOMIC_TEMPLATE \
  template <class P, class T = ::msim::atomic_target_value_t<P>, \
            ::msim::enable_if_t<::msim::is_atomic_target_v<P>, int> = 0>

namespace metal {

MSIM_ATOMIC_TEMPLATE inline T atomic_load_explicit(const P& obj, memory_order) {
  return __atomic_load_n(&::msim::atomic_target(obj)->value_, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline void atomic_store_explicit(const P& obj, ::msim::atomic_target_value_t<P> desired, memory_order) {
  __atomic_store_n(&::msim::atomic_target(obj)->value_, desired, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline T atomic_exchange_explicit(const P& obj, ::msim::atomic_target_value_t<P> desired, memory_order) {
  static_assert(!::msim::is_same<T, unsigned long>::value,
                "atomic_exchange_explicit is not defined for atomic_ulong (MSL section 6.15)");
  return __atomic_exchange_n(&::msim::atomic_target(obj)->value_, desired, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline bool atomic_compare_exchange_weak_explicit(const P& obj, ::msim::atomic_target_value_t<P>* expected,
                                                                      ::msim::atomic_target_value_t<P> desired, memory_order,
                                                                      memory_order) {
  static_assert(!::msim::is_same<T, unsigned long>::value,
                "atomic_compare_exchange_weak_explicit is not defined for atomic_ulong (MSL "
                "section 6.15)");
  auto* a = ::msim::atomic_target(obj);
  return __atomic_compare_exchange(&a->value_, expected, &desired, true, __ATOMIC_RELAXED,
                                   __ATOMIC_RELAXED);
}

#define MSIM_ATOMIC_INT_OP(NAME, BUILTIN, WHAT)                                                 \
  MSIM_ATOMIC_TEMPLATE inline T atomic_fetch_##NAME##_explicit(const P& obj, ::msim::atomic_target_value_t<P> operand,          \
                                                               memory_order) {                  \
    static_assert(::msim::is_32bit_int_v<T>,                                                    \
                  "atomic_fetch_" #NAME "_explicit is defined for atomic_int and atomic_uint "  \
                  "only (MSL section 6.15)");                                                   \
    return BUILTIN(&::msim::atomic_target(obj)->value_, operand, __ATOMIC_RELAXED);             \
  }
MSIM_ATOMIC_INT_OP(and, __atomic_fetch_and, "and")
MSIM_ATOMIC_INT_OP(or, __atomic_fetch_or, "or")
MSIM_ATOMIC_INT_OP(xor, __atomic_fetch_xor, "xor")
#undef MSIM_ATOMIC_INT_OP

MSIM_ATOMIC_TEMPLATE inline T atomic_fetch_add_explicit(const P& obj, ::msim::atomic_target_value_t<P> operand, memory_order) {
  static_assert(::msim::is_32bit_int_v<T> || ::msim::is_same<T, float>::value,
                "atomic_fetch_add_explicit is defined for atomic_int, atomic_uint and atomic_float "
                "only (MSL section 6.15)");
  auto* a = ::msim::atomic_target(obj);
  if constexpr (::msim::is_same<T, float>::value)
    return ::msim::float_fetch_op(a, operand, [](float x, float y) { return x + y; });
  else
    return __atomic_fetch_add(&a->value_, operand, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline T atomic_fetch_sub_explicit(const P& obj, ::msim::atomic_target_value_t<P> operand, memory_order) {
  static_assert(::msim::is_32bit_int_v<T> || ::msim::is_same<T, float>::value,
                "atomic_fetch_sub_explicit is defined for atomic_int, atomic_uint and atomic_float "
                "only (MSL section 6.15)");
  auto* a = ::msim::atomic_target(obj);
  if constexpr (::msim::is_same<T, float>::value)
    return ::msim::float_fetch_op(a, operand, [](float x, float y) { return x - y; });
  else
    return __atomic_fetch_sub(&a->value_, operand, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline T atomic_fetch_min_explicit(const P& obj, ::msim::atomic_target_value_t<P> operand, memory_order) {
  static_assert(::msim::is_32bit_int_v<T> || ::msim::is_same<T, unsigned long>::value,
                "atomic_fetch_min_explicit is defined for atomic_int, atomic_uint and atomic_ulong "
                "only; MSL has no atomic min on atomic_float (section 6.15)");
  return __atomic_fetch_min(&::msim::atomic_target(obj)->value_, operand, __ATOMIC_RELAXED);
}

MSIM_ATOMIC_TEMPLATE inline T atomic_fetch_max_explicit(const P& obj, ::msim::atomic_target_value_t<P> operand, memory_order) {
  static_assert(::msim::is_32bit_int_v<T> || ::msim::is_same<T, unsigned long>::value,
                "atomic_fetch_max_explicit is defined for atomic_int, atomic_uint and atomic_ulong "
                "only; MSL has no atomic max on atomic_float (section 6.15)");
  return __atomic_fetch_max(&::msim::atomic_target(obj)->value_, operand, __ATOMIC_RELAXED);
}

#undef MSIM_ATOMIC_TEMPLATE
}  // namespace metal
