// What the sim's front end generates around kernels, written by hand for the executor's tests:
// argument access by parameter position, threadgroup memory, and the library's exported table.
// It includes only the executor's side of the shim (msl_context.h, msl_sync.h), so these tests
// do not depend on the front end.
#pragma once
#include "msl_context.h"
#include "msl_sync.h"

typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned long ulong;
typedef _Float16 half;
typedef __bf16 bfloat;
typedef float float2 __attribute__((ext_vector_type(2)));
typedef float float4 __attribute__((ext_vector_type(4)));
typedef int int2 __attribute__((ext_vector_type(2)));
typedef uint uint2 __attribute__((ext_vector_type(2)));
typedef unsigned long ulong2 __attribute__((ext_vector_type(2)));

using namespace metal;

// float -> bfloat, which clang lowers to a libgcc call that Debian's libgcc lacks (the front
// end's shim defines it the same way): round to nearest even, NaN kept quiet.
extern "C" __attribute__((visibility("hidden"), weak)) __bf16 __truncsfbf2(float f) {
  unsigned u;
  __builtin_memcpy(&u, &f, 4);
  unsigned short b = (u & 0x7fffffffu) > 0x7f800000u ? (unsigned short)((u >> 16) | 0x40u)
                                                     : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  __bf16 r;
  __builtin_memcpy(&r, &b, 2);
  return r;
}

namespace harness {

// Element i of the buffer bound at parameter `position`, bounds-checked like the front end's
// checked pointers.
template <class T>
inline T& at(msim_thread* t, int position, long i) {
  const msim_region& r = t->launch->args[position];
  if (i < 0 || (unsigned long)(i + 1) * sizeof(T) > r.size)
    msim::failf("index %ld is outside buffer %d (%lu elements)", i, position,
                (unsigned long)(r.size / sizeof(T)));
  return reinterpret_cast<T*>(r.data)[i];
}

template <class T>
inline T* buffer(msim_thread* t, int position) {
  return reinterpret_cast<T*>(t->launch->args[position].data);
}

// A `constant T&` parameter.
template <class T>
inline T value(msim_thread* t, int position) {
  T v;
  __builtin_memcpy(&v, t->launch->args[position].data, sizeof(T));
  return v;
}

// A [[threadgroup(i)]] parameter.
template <class T>
inline T* threadgroup_param(msim_thread* t, int position) {
  return reinterpret_cast<T*>(t->threadgroup_args[position].data);
}

// `threadgroup T name[count];` declared in a kernel body; `slot` numbers the declarations.
template <class T>
inline T* threadgroup_array(msim_thread* t, uint32_t slot, unsigned long count) {
  return static_cast<T*>(t->launch->rt->threadgroup_alloc(t, slot, sizeof(T) * count, alignof(T)));
}

inline uint gid(msim_thread* t) { return t->thread_position_in_grid[0]; }
inline uint lid(msim_thread* t) { return t->thread_position_in_threadgroup[0]; }
inline uint lane(msim_thread* t) { return t->thread_index_in_simdgroup; }

}  // namespace harness

using namespace harness;

#define HARNESS_LIBRARY(...)                                                                   \
  extern "C" __attribute__((visibility("default"))) const msim_library_info*                   \
  msim_library_info_get(void) {                                                                \
    static const msim_kernel_desc kernels[] = {__VA_ARGS__};                                   \
    static const msim_library_info info = {HARNESS_ABI_VERSION,                                \
                                           sizeof kernels / sizeof kernels[0], kernels};       \
    return &info;                                                                              \
  }                                                                                            \
  extern "C" __attribute__((visibility("default"))) void msim_set_current(msim_thread* t) {   \
    msim::tls_current = t;                                                                     \
  }

#ifndef HARNESS_ABI_VERSION
#define HARNESS_ABI_VERSION MSIM_ABI_VERSION
#endif
