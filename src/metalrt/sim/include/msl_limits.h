// metal::numeric_limits, the type traits of metal_type_traits that kernels use, and the numeric
// constants of metal_stdlib (MSL specification 3.1, sections 6.1 and 6.5.1: MAXFLOAT, M_PI_F,
// HALF_MAX, ...).
#pragma once
#include "msl_types.h"

namespace metal {

template <class T> struct numeric_limits {
  static constexpr bool is_specialized = false;
};

#define MSIM_INT_LIMITS(T, LO, HI, DIGITS)                                         \
  template <> struct numeric_limits<T> {                                           \
    static constexpr bool is_specialized = true;                                   \
    static constexpr bool is_signed = (LO) < 0;                                \
    static constexpr bool is_integer = true;                                       \
    static constexpr bool is_exact = true;                                         \
    static constexpr bool has_infinity = false;                                    \
    static constexpr bool has_quiet_NaN = false;                                   \
    static constexpr int digits = DIGITS;                                          \
    static constexpr T min() { return LO; }                                        \
    static constexpr T max() { return HI; }                                        \
    static constexpr T lowest() { return LO; }                                     \
    static constexpr T epsilon() { return 0; }                                     \
  };
MSIM_INT_LIMITS(bool, false, true, 1)
MSIM_INT_LIMITS(char, -128, 127, 7)
MSIM_INT_LIMITS(unsigned char, 0, 255, 8)
MSIM_INT_LIMITS(short, -32768, 32767, 15)
MSIM_INT_LIMITS(unsigned short, 0, 65535, 16)
MSIM_INT_LIMITS(int, -2147483647 - 1, 2147483647, 31)
MSIM_INT_LIMITS(unsigned int, 0u, 4294967295u, 32)
MSIM_INT_LIMITS(long, -9223372036854775807L - 1, 9223372036854775807L, 63)
MSIM_INT_LIMITS(unsigned long, 0ul, 18446744073709551615ul, 64)
#undef MSIM_INT_LIMITS

#define MSIM_FLOAT_LIMITS(T, MIN, MAX, EPS, DIGITS, BITS_INF, BITS_NAN, BITS_DENORM, UINT) \
  template <> struct numeric_limits<T> {                                           \
    static constexpr bool is_specialized = true;                                   \
    static constexpr bool is_signed = true;                                        \
    static constexpr bool is_integer = false;                                      \
    static constexpr bool is_exact = false;                                        \
    static constexpr bool has_infinity = true;                                     \
    static constexpr bool has_quiet_NaN = true;                                    \
    static constexpr int digits = DIGITS;                                          \
    static constexpr T min() { return T(MIN); }                                    \
    static constexpr T max() { return T(MAX); }                                    \
    static constexpr T lowest() { return T(-(MAX)); }                              \
    static constexpr T epsilon() { return T(EPS); }                                \
    static constexpr T infinity() { return __builtin_bit_cast(T, (UINT)(BITS_INF)); } \
    static constexpr T quiet_NaN() { return __builtin_bit_cast(T, (UINT)(BITS_NAN)); } \
    static constexpr T signaling_NaN() { return quiet_NaN(); }                     \
    static constexpr T denorm_min() { return __builtin_bit_cast(T, (UINT)(BITS_DENORM)); } \
  };
MSIM_FLOAT_LIMITS(float, 0x1p-126f, 0x1.fffffep127f, 0x1p-23f, 24, 0x7f800000u, 0x7fc00000u, 1u,
                  unsigned int)
MSIM_FLOAT_LIMITS(half, 0x1p-14f, 65504.0f, 0x1p-10f, 11, 0x7c00, 0x7e00, 1, unsigned short)
MSIM_FLOAT_LIMITS(bfloat, 0x1p-126f, 0x1.fep127f, 0x1p-7f, 8, 0x7f80, 0x7fc0, 1, unsigned short)
#undef MSIM_FLOAT_LIMITS

// ---- type traits (metal_type_traits) ----
template <class T, T V> struct integral_constant {
  static constexpr T value = V;
  using value_type = T;
  constexpr operator T() const { return V; }
};
using true_type = integral_constant<bool, true>;
using false_type = integral_constant<bool, false>;

using ::msim::enable_if;
using ::msim::enable_if_t;
template <class A, class B> struct is_same : integral_constant<bool, ::msim::is_same<A, B>::value> {};
template <class A, class B> constexpr bool is_same_v = ::msim::is_same<A, B>::value;

template <bool B, class T, class F> struct conditional { using type = T; };
template <class T, class F> struct conditional<false, T, F> { using type = F; };
template <bool B, class T, class F> using conditional_t = typename conditional<B, T, F>::type;

using ::msim::remove_cv;
using ::msim::remove_cv_t;
template <class T> using remove_reference = ::msim::remove_reference<T>;
template <class T> using remove_reference_t = typename ::msim::remove_reference<T>::type;
template <class T> struct remove_const { using type = T; };
template <class T> struct remove_const<const T> { using type = T; };
template <class T> using remove_const_t = typename remove_const<T>::type;
template <class T> struct decay { using type = ::msim::decay_value_t<T>; };
template <class T> using decay_t = ::msim::decay_value_t<T>;

template <class T> struct is_floating_point
    : integral_constant<bool, ::msim::is_float_scalar<remove_cv_t<T>>::value> {};
template <class T> constexpr bool is_floating_point_v = is_floating_point<T>::value;
template <class T> struct is_integral
    : integral_constant<bool, ::msim::is_int_scalar<remove_cv_t<T>>::value ||
                                  ::msim::is_same<remove_cv_t<T>, bool>::value> {};
template <class T> constexpr bool is_integral_v = is_integral<T>::value;
template <class T> struct is_arithmetic
    : integral_constant<bool, is_integral<T>::value || is_floating_point<T>::value> {};
template <class T> constexpr bool is_arithmetic_v = is_arithmetic<T>::value;
template <class T> struct is_scalar : is_arithmetic<T> {};
template <class T> constexpr bool is_scalar_v = is_scalar<T>::value;
template <class T> struct is_signed : integral_constant<bool, is_arithmetic<T>::value && T(-1) < T(0)> {};
template <class T> constexpr bool is_signed_v = is_signed<T>::value;
template <class T> struct is_unsigned
    : integral_constant<bool, is_arithmetic<T>::value && !(T(-1) < T(0))> {};
template <class T> constexpr bool is_unsigned_v = is_unsigned<T>::value;
template <class T> struct is_vector : integral_constant<bool, ::msim::is_vector_v<T>> {};
template <class T> constexpr bool is_vector_v = ::msim::is_vector_v<T>;
template <class T> struct vec_elements { static constexpr int value = ::msim::width_v<T>; };

template <class T> struct make_unsigned { using type = typename ::msim::make_unsigned_scalar<T>::type; };
template <class T> using make_unsigned_t = typename make_unsigned<T>::type;
template <class T> struct make_signed { using type = T; };
template <> struct make_signed<unsigned char> { using type = char; };
template <> struct make_signed<unsigned short> { using type = short; };
template <> struct make_signed<unsigned int> { using type = int; };
template <> struct make_signed<unsigned long> { using type = long; };
template <class T> using make_signed_t = typename make_signed<T>::type;

}  // namespace metal

// ---- constants (macros in metal_stdlib too) ----
#define MAXFLOAT 0x1.fffffep127f
#define HUGE_VALF __builtin_huge_valf()
#define INFINITY __builtin_inff()
#define NAN __builtin_nanf("")
#define FLT_DIG 6
#define FLT_MANT_DIG 24
#define FLT_MAX_10_EXP 38
#define FLT_MAX_EXP 128
#define FLT_MIN_10_EXP (-37)
#define FLT_MIN_EXP (-125)
#define FLT_RADIX 2
#define FLT_MAX 0x1.fffffep127f
#define FLT_MIN 0x1p-126f
#define FLT_EPSILON 0x1p-23f
#define HALF_DIG 3
#define HALF_MANT_DIG 11
#define HALF_MAX_10_EXP 4
#define HALF_MAX_EXP 16
#define HALF_MIN_10_EXP (-4)
#define HALF_MIN_EXP (-13)
#define HALF_RADIX 2
#define HALF_MAX ((half)65504.0f)
#define HALF_MIN ((half)0x1p-14f)
#define HALF_EPSILON ((half)0x1p-10f)
#define MAXHALF HALF_MAX
#define HUGE_VALH ((half)__builtin_huge_valf())
#define CHAR_BIT 8
#define SCHAR_MAX 127
#define SCHAR_MIN (-128)
#define UCHAR_MAX 255
#define CHAR_MAX SCHAR_MAX
#define CHAR_MIN SCHAR_MIN
#define USHRT_MAX 65535
#define SHRT_MAX 32767
#define SHRT_MIN (-32768)
#define UINT_MAX 0xffffffffu
#define INT_MAX 2147483647
#define INT_MIN (-2147483647 - 1)
#define ULONG_MAX 0xfffffffffffffffful
#define LONG_MAX 0x7fffffffffffffffl
#define LONG_MIN (-0x7fffffffffffffffl - 1)
#define M_E_F 2.71828182845904523536028747135266250f
#define M_LOG2E_F 1.44269504088896340735992468100189214f
#define M_LOG10E_F 0.434294481903251827651128918916605082f
#define M_LN2_F 0.693147180559945309417232121458176568f
#define M_LN10_F 2.30258509299404568401799145468436421f
#define M_PI_F 3.14159265358979323846264338327950288f
#define M_PI_2_F 1.57079632679489661923132169163975144f
#define M_PI_4_F 0.785398163397448309615660845819875721f
#define M_1_PI_F 0.318309886183790671537767526745028724f
#define M_2_PI_F 0.636619772367581343075535053490057448f
#define M_2_SQRTPI_F 1.12837916709551257389615890312154517f
#define M_SQRT2_F 1.41421356237309504880168872420969808f
#define M_SQRT1_2_F 0.707106781186547524400844362104849039f
#define M_E_H ((half)M_E_F)
#define M_LOG2E_H ((half)M_LOG2E_F)
#define M_LOG10E_H ((half)M_LOG10E_F)
#define M_LN2_H ((half)M_LN2_F)
#define M_LN10_H ((half)M_LN10_F)
#define M_PI_H ((half)M_PI_F)
#define M_PI_2_H ((half)M_PI_2_F)
#define M_PI_4_H ((half)M_PI_4_F)
#define M_1_PI_H ((half)M_1_PI_F)
#define M_2_PI_H ((half)M_2_PI_F)
#define M_2_SQRTPI_H ((half)M_2_SQRTPI_F)
#define M_SQRT2_H ((half)M_SQRT2_F)
#define M_SQRT1_2_H ((half)M_SQRT1_2_F)
