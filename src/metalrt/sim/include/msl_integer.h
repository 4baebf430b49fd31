// The integer functions of metal_stdlib (MSL specification 3.1, section 6.3), one overload per
// integer scalar and vector type as in Metal's headers (so min(uint, int) is ambiguous here as
// it is on a Mac).
#pragma once
#include "msl_types.h"

namespace msim {

template <class E> struct wider { using type = long; };
template <> struct wider<unsigned char> { using type = unsigned long; };
template <> struct wider<unsigned short> { using type = unsigned long; };
template <> struct wider<unsigned int> { using type = unsigned long; };
template <> struct wider<long> { using type = __int128; };
template <> struct wider<unsigned long> { using type = unsigned __int128; };

// A signed type that holds every sum, difference and product of two E's: for saturation.
template <class E> struct exact { using type = long; };
template <> struct exact<long> { using type = __int128; };
template <> struct exact<unsigned long> { using type = __int128; };

template <class E> constexpr int bit_width() { return int(sizeof(E) * 8); }
template <class E> constexpr E max_of() {
  if constexpr (E(-1) < E(0)) return E((typename make_unsigned_scalar<E>::type)(-1) >> 1);
  else return E(-1);
}
template <class E> constexpr E min_of() {
  if constexpr (E(-1) < E(0)) return E(-max_of<E>() - 1);
  else return E(0);
}

namespace ifn {
using u64 = unsigned long;
struct abs { template <class E> E operator()(E x) const { return x < E(0) ? E(-x) : x; } };
struct absdiff {
  template <class E> E operator()(E x, E y) const { return x > y ? E(x - y) : E(y - x); }
};
struct addsat {
  template <class E> E operator()(E x, E y) const {
    using W = typename exact<E>::type;
    W r = W(x) + W(y);
    return r > W(max_of<E>()) ? max_of<E>() : r < W(min_of<E>()) ? min_of<E>() : E(r);
  }
};
struct subsat {
  template <class E> E operator()(E x, E y) const {
    using W = typename exact<E>::type;
    W r = W(x) - W(y);
    return r > W(max_of<E>()) ? max_of<E>() : r < W(min_of<E>()) ? min_of<E>() : E(r);
  }
};
struct hadd {
  template <class E> E operator()(E x, E y) const {
    using W = typename wider<E>::type;
    return E((W(x) + W(y)) >> 1);
  }
};
struct rhadd {
  template <class E> E operator()(E x, E y) const {
    using W = typename wider<E>::type;
    return E((W(x) + W(y) + 1) >> 1);
  }
};
struct mulhi {
  template <class E> E operator()(E x, E y) const {
    using W = typename wider<E>::type;
    return E((W(x) * W(y)) >> bit_width<E>());
  }
};
struct mul24 {
  template <class E> E operator()(E x, E y) const { return E(x * y); }
};
struct min {
  template <class E> E operator()(E x, E y) const { return y < x ? y : x; }
};
struct max {
  template <class E> E operator()(E x, E y) const { return x < y ? y : x; }
};
struct rotate {
  template <class E> E operator()(E x, E n) const {
    using U = typename make_unsigned_scalar<E>::type;
    constexpr int w = bit_width<E>();
    unsigned s = unsigned(U(n)) % unsigned(w);
    U u = U(x);
    return E(s == 0 ? u : U((u << s) | (u >> (w - s))));
  }
};
struct clamp {
  template <class E> E operator()(E x, E lo, E hi) const { return x < lo ? lo : hi < x ? hi : x; }
};
struct mad24 {
  template <class E> E operator()(E x, E y, E z) const { return E(x * y + z); }
};
struct madhi {
  template <class E> E operator()(E x, E y, E z) const { return E(mulhi{}(x, y) + z); }
};
struct madsat {
  template <class E> E operator()(E x, E y, E z) const {
    using W = typename exact<E>::type;
    W r = W(x) * W(y) + W(z);
    return r > W(max_of<E>()) ? max_of<E>() : r < W(min_of<E>()) ? min_of<E>() : E(r);
  }
};
struct min3 {
  template <class E> E operator()(E x, E y, E z) const { return min{}(min{}(x, y), z); }
};
struct max3 {
  template <class E> E operator()(E x, E y, E z) const { return max{}(max{}(x, y), z); }
};
struct median3 {
  template <class E> E operator()(E x, E y, E z) const {
    return max{}(min{}(x, y), min{}(max{}(x, y), z));
  }
};
struct clz {
  template <class E> E operator()(E x) const {
    using U = typename make_unsigned_scalar<E>::type;
    u64 u = u64(U(x));
    return E(u == 0 ? bit_width<E>() : __builtin_clzl(u) - (64 - bit_width<E>()));
  }
};
struct ctz {
  template <class E> E operator()(E x) const {
    using U = typename make_unsigned_scalar<E>::type;
    u64 u = u64(U(x));
    return E(u == 0 ? bit_width<E>() : __builtin_ctzl(u));
  }
};
struct popcount {
  template <class E> E operator()(E x) const {
    using U = typename make_unsigned_scalar<E>::type;
    return E(__builtin_popcountl(u64(U(x))));
  }
};
struct reverse_bits {
  template <class E> E operator()(E x) const {
    using U = typename make_unsigned_scalar<E>::type;
    u64 r = __builtin_bitreverse64(u64(U(x)));
    return E(U(r >> (64 - bit_width<E>())));
  }
};
}  // namespace ifn

template <class F, class T> inline T imap1(T x) {
  if constexpr (width_v<T> == 1) {
    return F{}(x);
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = F{}(elem_t<T>(x[i]));
    return r;
  }
}
template <class F, class T> inline T imap2(T x, T y) {
  if constexpr (width_v<T> == 1) {
    return F{}(x, y);
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = F{}(elem_t<T>(x[i]), elem_t<T>(y[i]));
    return r;
  }
}
template <class F, class T> inline T imap3(T x, T y, T z) {
  if constexpr (width_v<T> == 1) {
    return F{}(x, y, z);
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i)
      r[i] = F{}(elem_t<T>(x[i]), elem_t<T>(y[i]), elem_t<T>(z[i]));
    return r;
  }
}

template <class T> inline T extract_bits_impl(T x, unsigned offset, unsigned bits) {
  using E = elem_t<T>;
  using U = typename make_unsigned_scalar<E>::type;
  constexpr unsigned w = unsigned(bit_width<E>());
  auto one = [&](E v) -> E {
    if (bits == 0) return E(0);
    U u = U(U(v) >> offset);
    if (bits >= w) return E(u);
    u &= U((U(1) << bits) - 1);
    if constexpr (E(-1) < E(0)) {  // signed: sign-extend the field
      U sign = U(U(1) << (bits - 1));
      if (u & sign) u |= U(~((U(1) << bits) - 1));
    }
    return E(u);
  };
  if constexpr (width_v<T> == 1) {
    return one(x);
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = one(E(x[i]));
    return r;
  }
}

template <class T> inline T insert_bits_impl(T base, T insert, unsigned offset, unsigned bits) {
  using E = elem_t<T>;
  using U = typename make_unsigned_scalar<E>::type;
  constexpr unsigned w = unsigned(bit_width<E>());
  auto one = [&](E b, E v) -> E {
    if (bits == 0) return b;
    U mask = bits >= w ? U(~U(0)) : U((U(1) << bits) - 1);
    mask = U(mask << offset);
    return E(U((U(b) & U(~mask)) | (U(U(v) << offset) & mask)));
  };
  if constexpr (width_v<T> == 1) {
    return one(base, insert);
  } else {
    T r;
    for (int i = 0; i < width_v<T>; ++i) r[i] = one(E(base[i]), E(insert[i]));
    return r;
  }
}

}  // namespace msim

// MSIM_INT_TYPES(M, ...) expands M(T, ...) for each integer scalar and vector type.
#define MSIM_INT_TYPES(M, ...)                                                                   \
  M(char, __VA_ARGS__) M(char2, __VA_ARGS__) M(char3, __VA_ARGS__) M(char4, __VA_ARGS__)         \
  M(uchar, __VA_ARGS__) M(uchar2, __VA_ARGS__) M(uchar3, __VA_ARGS__) M(uchar4, __VA_ARGS__)     \
  M(short, __VA_ARGS__) M(short2, __VA_ARGS__) M(short3, __VA_ARGS__) M(short4, __VA_ARGS__)     \
  M(ushort, __VA_ARGS__) M(ushort2, __VA_ARGS__) M(ushort3, __VA_ARGS__) M(ushort4, __VA_ARGS__) \
  M(int, __VA_ARGS__) M(int2, __VA_ARGS__) M(int3, __VA_ARGS__) M(int4, __VA_ARGS__)             \
  M(uint, __VA_ARGS__) M(uint2, __VA_ARGS__) M(uint3, __VA_ARGS__) M(uint4, __VA_ARGS__)         \
  M(long, __VA_ARGS__) M(long2, __VA_ARGS__) M(long3, __VA_ARGS__) M(long4, __VA_ARGS__)         \
  M(ulong, __VA_ARGS__) M(ulong2, __VA_ARGS__) M(ulong3, __VA_ARGS__) M(ulong4, __VA_ARGS__)
#define MSIM_INT_VECTORS(M, ...)                                                                 \
  M(char2, __VA_ARGS__) M(char3, __VA_ARGS__) M(char4, __VA_ARGS__)                              \
  M(uchar2, __VA_ARGS__) M(uchar3, __VA_ARGS__) M(uchar4, __VA_ARGS__)                           \
  M(short2, __VA_ARGS__) M(short3, __VA_ARGS__) M(short4, __VA_ARGS__)                           \
  M(ushort2, __VA_ARGS__) M(ushort3, __VA_ARGS__) M(ushort4, __VA_ARGS__)                        \
  M(int2, __VA_ARGS__) M(int3, __VA_ARGS__) M(int4, __VA_ARGS__)                                 \
  M(uint2, __VA_ARGS__) M(uint3, __VA_ARGS__) M(uint4, __VA_ARGS__)                              \
  M(long2, __VA_ARGS__) M(long3, __VA_ARGS__) M(long4, __VA_ARGS__)                              \
  M(ulong2, __VA_ARGS__) M(ulong3, __VA_ARGS__) M(ulong4, __VA_ARGS__)

#define MSIM_IDEF1(T, NAME) inline T NAME(T x) { return ::msim::imap1<::msim::ifn::NAME>(x); }
#define MSIM_IDEF2(T, NAME) \
  inline T NAME(T x, T y) { return ::msim::imap2<::msim::ifn::NAME>(x, y); }
#define MSIM_IDEF3(T, NAME) \
  inline T NAME(T x, T y, T z) { return ::msim::imap3<::msim::ifn::NAME>(x, y, z); }

namespace metal {
MSIM_INT_TYPES(MSIM_IDEF1, abs)
MSIM_INT_TYPES(MSIM_IDEF1, clz)
MSIM_INT_TYPES(MSIM_IDEF1, ctz)
MSIM_INT_TYPES(MSIM_IDEF1, popcount)
MSIM_INT_TYPES(MSIM_IDEF1, reverse_bits)
MSIM_INT_TYPES(MSIM_IDEF2, absdiff)
MSIM_INT_TYPES(MSIM_IDEF2, addsat)
MSIM_INT_TYPES(MSIM_IDEF2, subsat)
MSIM_INT_TYPES(MSIM_IDEF2, hadd)
MSIM_INT_TYPES(MSIM_IDEF2, rhadd)
MSIM_INT_TYPES(MSIM_IDEF2, mulhi)
MSIM_INT_TYPES(MSIM_IDEF2, min)
MSIM_INT_TYPES(MSIM_IDEF2, max)
MSIM_INT_TYPES(MSIM_IDEF2, rotate)
MSIM_INT_TYPES(MSIM_IDEF3, clamp)
MSIM_INT_TYPES(MSIM_IDEF3, madhi)
MSIM_INT_TYPES(MSIM_IDEF3, madsat)
MSIM_INT_TYPES(MSIM_IDEF3, min3)
MSIM_INT_TYPES(MSIM_IDEF3, max3)
MSIM_INT_TYPES(MSIM_IDEF3, median3)

// mul24/mad24 exist for 32-bit integers only.
#define MSIM_IDEF_24(T, _)                                                                      \
  inline T mul24(T x, T y) { return ::msim::imap2<::msim::ifn::mul24>(x, y); }                 \
  inline T mad24(T x, T y, T z) { return ::msim::imap3<::msim::ifn::mad24>(x, y, z); }
MSIM_IDEF_24(int, _)
MSIM_IDEF_24(int2, _)
MSIM_IDEF_24(int3, _)
MSIM_IDEF_24(int4, _)
MSIM_IDEF_24(uint, _)
MSIM_IDEF_24(uint2, _)
MSIM_IDEF_24(uint3, _)
MSIM_IDEF_24(uint4, _)
#undef MSIM_IDEF_24

#define MSIM_IDEF_BITS(T, _)                                                                    \
  inline T extract_bits(T x, uint offset, uint bits) {                                        \
    return ::msim::extract_bits_impl(x, offset, bits);                                        \
  }                                                                                           \
  inline T insert_bits(T base, T insert, uint offset, uint bits) {                            \
    return ::msim::insert_bits_impl(base, insert, offset, bits);                              \
  }
MSIM_INT_TYPES(MSIM_IDEF_BITS, _)
#undef MSIM_IDEF_BITS

// Vector forms of clamp with scalar bounds.
#define MSIM_IDEF_CLAMP_SCALAR(T, _) \
  inline T clamp(T x, ::msim::elem_t<T> lo, ::msim::elem_t<T> hi) { return clamp(x, T(lo), T(hi)); }
MSIM_INT_VECTORS(MSIM_IDEF_CLAMP_SCALAR, _)
#undef MSIM_IDEF_CLAMP_SCALAR
}  // namespace metal

#undef MSIM_IDEF1
#undef MSIM_IDEF2
#undef MSIM_IDEF3
