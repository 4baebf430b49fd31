// Support routines the compiler calls on its own, defined (hidden) in every kernel library so
// that a library never depends on what the host's runtime libraries happen to provide:
//   __truncsfhf2/__extendhfsf2/__truncsfbf2: float <-> half/bfloat conversions, which clang
//     calls when the CPU has no conversion instructions; Debian's libgcc and zig's compiler-rt
//     lack __truncsfbf2. Round to nearest even; NaN stays NaN (quiet).
//   __ubsan_handle_*_abort: the checks the front end compiles in (-fsanitize=array-bounds for
//     thread and threadgroup arrays, integer-divide-by-zero, shift-exponent) call these with the
//     source location of the check; each ends the launch with a LaunchError naming the line.
#pragma once
#include "msl_context.h"

namespace msim {

inline unsigned short float_to_half_bits(float f) {
  unsigned x = __builtin_bit_cast(unsigned, f);
  unsigned sign = (x >> 16) & 0x8000u;
  unsigned abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // overflow (rounds to inf)
  if (abs < 0x38800000u) {  // subnormal half (or zero): shift the implicit bit in, round
    if (abs < 0x33000000u) return (unsigned short)sign;  // below half of the smallest subnormal
    unsigned e = abs >> 23;
    unsigned m = (abs & 0x7fffffu) | 0x800000u;
    unsigned shift = 126u - e;  // 14 - (e - 127) + 13 - 1 ... bits to drop
    unsigned kept = m >> (shift);
    unsigned rest = m & ((1u << shift) - 1u);
    unsigned half_way = 1u << (shift - 1);
    if (rest > half_way || (rest == half_way && (kept & 1u))) ++kept;
    return (unsigned short)(sign | kept);
  }
  unsigned r = abs - 0x38000000u;  // rebias the exponent from 127 to 15
  unsigned kept = r >> 13;
  unsigned rest = r & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (kept & 1u))) ++kept;
  return (unsigned short)(sign | kept);
}

inline float half_bits_to_float(unsigned short h) {
  unsigned sign = (unsigned)(h & 0x8000u) << 16;
  unsigned e = (h >> 10) & 0x1fu;
  unsigned m = h & 0x3ffu;
  unsigned x;
  if (e == 0x1fu) {
    x = sign | 0x7f800000u | (m << 13);
  } else if (e != 0) {
    x = sign | ((e + 112u) << 23) | (m << 13);
  } else if (m == 0) {
    x = sign;
  } else {  // subnormal half: normalise
    int shift = __builtin_clz(m) - 21;  // bring the leading 1 to bit 10
    m = (m << shift) & 0x3ffu;
    x = sign | ((unsigned)(113 - shift) << 23) | (m << 13);
  }
  return __builtin_bit_cast(float, x);
}

inline unsigned short float_to_bfloat_bits(float f) {
  unsigned x = __builtin_bit_cast(unsigned, f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);  // quiet NaN
  unsigned rounding = 0x7fffu + ((x >> 16) & 1u);
  return (unsigned short)((x + rounding) >> 16);
}

[[noreturn]] inline void check_failed(const char* what, const char* file, unsigned line,
                                      unsigned column) {
  failf("%s at %s:%u:%u", what, file ? file : "kernel.metal", line, column);
}

// The layout clang's sanitizer checks pass to their handlers (compiler-rt's ubsan_handlers.h).
struct ubsan_location {
  const char* file;
  unsigned line, column;
};
struct ubsan_type {
  unsigned short kind, info;
  char name[1];
};
struct ubsan_out_of_bounds {
  ubsan_location loc;
  const ubsan_type* array_type;
  const ubsan_type* index_type;
};
struct ubsan_overflow {
  ubsan_location loc;
  const ubsan_type* type;
};
struct ubsan_shift {
  ubsan_location loc;
  const ubsan_type* lhs_type;
  const ubsan_type* rhs_type;
};

inline long ubsan_value(const ubsan_type* t, unsigned long v) {
  // Integer kinds store the value inline when it fits; info bit 0 = signed, info >> 1 = log2(bits).
  unsigned bits = 1u << (t->info >> 1);
  if ((t->info & 1) && bits < 64) {
    unsigned long sign = 1ul << (bits - 1);
    v &= (sign << 1) - 1;
    return (long)((v ^ sign) - sign);
  }
  return (long)v;
}

}  // namespace msim

extern "C" {

__attribute__((visibility("hidden"))) _Float16 __truncsfhf2(float f) {
  return __builtin_bit_cast(_Float16, msim::float_to_half_bits(f));
}
__attribute__((visibility("hidden"))) float __extendhfsf2(_Float16 h) {
  return msim::half_bits_to_float(__builtin_bit_cast(unsigned short, h));
}
__attribute__((visibility("hidden"))) __bf16 __truncsfbf2(float f) {
  return __builtin_bit_cast(__bf16, msim::float_to_bfloat_bits(f));
}

[[noreturn]] __attribute__((visibility("hidden"))) void
__ubsan_handle_out_of_bounds_abort(msim::ubsan_out_of_bounds* data, unsigned long index) {
  char what[256];
  long i = msim::ubsan_value(data->index_type, index);
  __builtin_snprintf(what, sizeof what, "index %ld is out of bounds for the array of type %s", i,
                     data->array_type->name);
  msim::check_failed(what, data->loc.file, data->loc.line, data->loc.column);
}

[[noreturn]] __attribute__((visibility("hidden"))) void
__ubsan_handle_divrem_overflow_abort(msim::ubsan_overflow* data, unsigned long lhs,
                                     unsigned long rhs) {
  long r = msim::ubsan_value(data->type, rhs);
  (void)lhs;
  msim::check_failed(r == 0 ? "integer division by zero"
                            : "integer division overflow (the minimum value divided by -1)",
                     data->loc.file, data->loc.line, data->loc.column);
}

[[noreturn]] __attribute__((visibility("hidden"))) void
__ubsan_handle_shift_out_of_bounds_abort(msim::ubsan_shift* data, unsigned long lhs,
                                         unsigned long rhs) {
  char what[256];
  (void)lhs;
  unsigned bits = 1u << (data->lhs_type->info >> 1);
  __builtin_snprintf(what, sizeof what,
                     "shift by %ld, outside 0..%u for a %u-bit %s: MSL (C++14) leaves such a shift "
                     "undefined",
                     msim::ubsan_value(data->rhs_type, rhs), bits - 1, bits, data->lhs_type->name);
  msim::check_failed(what, data->loc.file, data->loc.line, data->loc.column);
}

}  // extern "C"
