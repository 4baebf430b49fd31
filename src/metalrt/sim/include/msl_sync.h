// The kernel side of synchronisation in the MSL simulator: mem_flags and the barriers, the
// SIMD-group and quad-group functions, and simdgroup_matrix. Everything here is a template over
// the value type (scalars and clang ext_vector types) and, for memory operations, over any
// pointer-like type that indexes like a raw pointer (the front end's checked pointers), so this
// header needs nothing but msl_context.h.
//
// How a collective call works: each GPU thread fills an msim_simd_op with its operand and calls
// the executor's simd_sync, which parks the thread on its fiber until every lane of its
// SIMD-group has either reached the same call site, left the kernel, or blocked elsewhere. The
// executor then runs the op's resolve function once, over the lanes that arrived (the active
// lanes, exactly MSL's notion in divergent code), and the resolve function writes each lane's
// result. Lanes meet by call site, so each call takes the caller's line and column through a
// defaulted msim::site argument (the front end emits #line directives, so these are the user's).
// The site is a struct rather than two integers so that a stray extra argument in user code can
// never bind to it silently.
//
// What MSL leaves undefined and a GPU silently tolerates is reported here: a lane index or delta
// that must be uniform and is not, a read from an inactive lane, a simdgroup_matrix operation
// in a partial SIMD-group.
#pragma once
#include "msl_context.h"

namespace msim {

// A call site in the user's source: the key by which the lanes of a SIMD-group meet.
struct site {
  uint32_t line;
  uint32_t column;
};

namespace sync_detail {

// Element type and width of a scalar or clang ext_vector type.
template <class T>
struct value_traits {
  using element = T;
  static constexpr int width = 1;
};
template <class E, int N>
struct value_traits<E __attribute__((ext_vector_type(N)))> {
  using element = E;
  static constexpr int width = N;
};

template <class T>
constexpr bool is_simd_value() {
  using E = typename value_traits<T>::element;
  return (__is_integral(E) || __is_floating_point(E)) && !__is_same(E, bool);
}
template <class T>
constexpr bool is_integer_value() {
  using E = typename value_traits<T>::element;
  return __is_integral(E) && !__is_same(E, bool);
}

#define MSIM_REQUIRE_SIMD_VALUE(T, fn)                                                        \
  static_assert(::msim::sync_detail::is_simd_value<T>(),                                      \
                fn "() takes a scalar or vector of an integer or floating-point type (not "   \
                   "bool): MSL spec 6.9.2");                                                   \
  static_assert(sizeof(T) <= 32, fn "(): the value is larger than any MSL vector")

template <class T>
inline T load(const unsigned char* p) {
  T v;
  __builtin_memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
inline void store(unsigned char* p, const T& v) {
  __builtin_memcpy(p, &v, sizeof(T));
}

// Second operand (filling_data) of the shuffle-and-fill functions, after the first in op->in.
constexpr unsigned kFillOffset = 32;

// Parks the calling lane until its SIMD-group resolves the call site, then returns its result.
template <class R, class A>
inline R rendezvous(const char* name, uint32_t rule, msim_simd_resolve_fn resolve, const A& in,
                    int64_t arg, site at, const A* fill = nullptr) {
  static_assert(sizeof(A) <= sizeof(msim_simd_op::in) && sizeof(R) <= sizeof(msim_simd_op::out),
                "operand too large for msim_simd_op");
  msim_thread* t = ::msim::self();
  msim_simd_op op;  // not zeroed: only these fields are read
  op.name = name;
  op.line = at.line;
  op.column = at.column;
  op.rule = rule;
  op.lane = t->thread_index_in_simdgroup;
  op.resolve = resolve;
  op.arg = arg;
  op.ptr = nullptr;
  op.error[0] = 0;
  __builtin_memcpy(op.in, &in, sizeof(A));
  if (fill) __builtin_memcpy(op.in + kFillOffset, fill, sizeof(A));
  t->launch->rt->simd_sync(t, &op);
  R out;
  __builtin_memcpy(&out, op.out, sizeof(R));
  return out;
}

// ---- resolve functions ------------------------------------------------------------------
// Each runs once per rendezvous, inside the executor (on a fiber's stack: keep frames small).
// lanes[i] is lane i's op or NULL when lane i is inactive; n is the number of lanes the
// SIMD-group has (fewer than 32 in the last SIMD-group of a threadgroup whose size is not a
// multiple of 32). W is the width of the group the function works on: 32 for simd_ functions,
// 4 for quad_ functions (each quad separately).

inline uint32_t segment_end(uint32_t base, uint32_t width, uint32_t n) {
  return base + width < n ? base + width : n;
}

inline const char* first_error(msim_simd_op* const* lanes, uint32_t n, const char* format, ...)
    __attribute__((format(printf, 3, 4)));
inline const char* first_error(msim_simd_op* const* lanes, uint32_t n, const char* format, ...) {
  msim_simd_op* op = nullptr;
  for (uint32_t l = 0; l < n && !op; ++l) op = lanes[l];
  __builtin_va_list args;
  __builtin_va_start(args, format);
  __builtin_vsnprintf(op->error, sizeof op->error, format, args);
  __builtin_va_end(args);
  return op->error;
}

struct op_sum {
  template <class T> static T apply(T a, T b) { return a + b; }
  template <class T> static T identity() { return (T)0; }
};
struct op_product {
  template <class T> static T apply(T a, T b) { return a * b; }
  template <class T> static T identity() { return (T)1; }
};
struct op_min {
  template <class T> static T apply(T a, T b) { return __builtin_elementwise_min(a, b); }
};
struct op_max {
  template <class T> static T apply(T a, T b) { return __builtin_elementwise_max(a, b); }
};
struct op_and {
  template <class T> static T apply(T a, T b) { return a & b; }
};
struct op_or {
  template <class T> static T apply(T a, T b) { return a | b; }
};
struct op_xor {
  template <class T> static T apply(T a, T b) { return a ^ b; }
};

// Reductions: every active lane of a segment gets the combination, in lane order, of the
// active lanes' values.
template <class T, class Op, uint32_t W>
const char* resolve_reduce(msim_simd_op* const* lanes, uint32_t n) {
  for (uint32_t base = 0; base < n; base += W) {
    const uint32_t end = segment_end(base, W, n);
    T acc{};
    bool any = false;
    for (uint32_t l = base; l < end; ++l) {
      if (!lanes[l]) continue;
      const T v = load<T>(lanes[l]->in);
      acc = any ? Op::apply(acc, v) : v;
      any = true;
    }
    for (uint32_t l = base; l < end; ++l)
      if (lanes[l]) store(lanes[l]->out, acc);
  }
  return nullptr;
}

// Prefix scans over the active lanes of each segment, in lane order.
template <class T, class Op, uint32_t W, bool Inclusive>
const char* resolve_scan(msim_simd_op* const* lanes, uint32_t n) {
  for (uint32_t base = 0; base < n; base += W) {
    const uint32_t end = segment_end(base, W, n);
    T acc = Op::template identity<T>();
    for (uint32_t l = base; l < end; ++l) {
      if (!lanes[l]) continue;
      const T v = load<T>(lanes[l]->in);
      if (Inclusive) {
        acc = Op::apply(acc, v);
        store(lanes[l]->out, acc);
      } else {
        store(lanes[l]->out, acc);
        acc = Op::apply(acc, v);
      }
    }
  }
  return nullptr;
}

enum class permute : uint8_t {
  shuffle,          // arg: source lane, may differ per lane
  broadcast,        // arg: source lane, uniform
  broadcast_first,  // the first active lane
  up,               // arg: delta, uniform; lanes below delta keep their value
  down,             // arg: delta, uniform; lanes at or above W - delta keep their value
  rotate_up,        // arg: delta, uniform; wraps around
  rotate_down,
  xor_,             // arg: mask, uniform
  fill_up,          // arg: delta | modulo << 16, uniform; wraps into filling_data
  fill_down,
};

constexpr bool needs_uniform_arg(permute k) {
  return k != permute::shuffle && k != permute::broadcast_first;
}

inline const char* what_arg(permute k) {
  switch (k) {
    case permute::broadcast: return "lane index";
    case permute::xor_: return "mask";
    default: return "delta";
  }
}

// The shuffles and broadcasts. A lane may read only an active lane (MSL spec 6.9.2: "Threads
// may only read data from another active thread"); reading an inactive one is reported.
template <class T, permute K, uint32_t W>
const char* resolve_permute(msim_simd_op* const* lanes, uint32_t n) {
  const char* unit = W == 32 ? "SIMD-group" : "quad-group";
  for (uint32_t base = 0; base < n; base += W) {
    const uint32_t end = segment_end(base, W, n);
    uint32_t first = end;
    for (uint32_t l = base; l < end; ++l)
      if (lanes[l]) { first = l; break; }
    if (first == end) continue;
    if (needs_uniform_arg(K)) {
      for (uint32_t l = first + 1; l < end; ++l)
        if (lanes[l] && lanes[l]->arg != lanes[first]->arg)
          return first_error(lanes, n,
                             "%s at line %u: the %s must be the same for every active thread of "
                             "the %s, but lane %u passes %lld and lane %u passes %lld",
                             lanes[first]->name, lanes[first]->line, what_arg(K), unit, first,
                             (long long)lanes[first]->arg, l, (long long)lanes[l]->arg);
    }
    for (uint32_t l = first; l < end; ++l) {
      msim_simd_op* op = lanes[l];
      if (!op) continue;
      const int64_t i = l - base;  // index within the segment
      const int64_t arg = op->arg;
      int64_t src = i;             // index within the segment of the lane read
      bool from_fill = false;
      bool own = false;
      switch (K) {
        case permute::shuffle:
        case permute::broadcast: src = arg; break;
        case permute::broadcast_first: src = first - base; break;
        case permute::up: own = i < arg; src = i - arg; break;
        case permute::down: own = i + arg >= (int64_t)W; src = i + arg; break;
        case permute::rotate_up: src = ((i - arg) % W + W) % W; break;
        case permute::rotate_down: src = (i + arg) % W; break;
        case permute::xor_: src = i ^ arg; break;
        case permute::fill_up:
        case permute::fill_down: {
          const int64_t delta = arg & 0xffff, modulo = arg >> 16;
          if (modulo < 2 || modulo > (int64_t)W || (modulo & (modulo - 1)))
            return first_error(lanes, n, "%s at line %u: modulo is %lld; it must be %s",
                               op->name, op->line, (long long)modulo,
                               W == 32 ? "2, 4, 8, 16 or 32" : "2 or 4");
          if (delta >= modulo)
            return first_error(lanes, n, "%s at line %u: delta %lld is not below the modulo %lld",
                               op->name, op->line, (long long)delta, (long long)modulo);
          const int64_t vec_base = i - i % modulo, j = i % modulo;
          if (K == permute::fill_up) {
            from_fill = j < delta;
            src = vec_base + (from_fill ? j - delta + modulo : j - delta);
          } else {
            from_fill = j + delta >= modulo;
            src = vec_base + (from_fill ? j + delta - modulo : j + delta);
          }
          break;
        }
      }
      if (own) {
        __builtin_memcpy(op->out, op->in, sizeof(T));
        continue;
      }
      if (src < 0 || src >= (int64_t)W)
        return first_error(lanes, n,
                           "%s at line %u: lane %u asks for %s lane %lld, which does not exist "
                           "(lanes are numbered 0 to %u)",
                           op->name, op->line, l, W == 32 ? "SIMD" : "quad", (long long)src, W - 1);
      const uint32_t g = base + (uint32_t)src;
      if (g >= n || !lanes[g])
        return first_error(lanes, n,
                           "%s at line %u: lane %u reads lane %u, which is inactive (it returned, "
                           "is elsewhere in divergent code, or lies beyond a partial SIMD-group); "
                           "MSL lets a thread read only active threads, and the GPU returns "
                           "garbage here",
                           op->name, op->line, l, g);
      const msim_simd_op* from = lanes[g];
      __builtin_memcpy(op->out, from->in + (from_fill ? kFillOffset : 0), sizeof(T));
    }
  }
  return nullptr;
}

// Votes: each active lane gets {bits of the active lanes whose operand is true, bits of the
// active lanes}, relative to its segment. simd_ballot/all/any/is_first and
// simd_active_threads_mask all derive from these two masks.
struct vote_result {
  uint64_t yes;
  uint64_t active;
};

template <uint32_t W>
const char* resolve_vote(msim_simd_op* const* lanes, uint32_t n) {
  for (uint32_t base = 0; base < n; base += W) {
    const uint32_t end = segment_end(base, W, n);
    vote_result r{0, 0};
    for (uint32_t l = base; l < end; ++l) {
      if (!lanes[l]) continue;
      const uint64_t bit = 1ull << (l - base);
      r.active |= bit;
      if (load<bool>(lanes[l]->in)) r.yes |= bit;
    }
    for (uint32_t l = base; l < end; ++l)
      if (lanes[l]) store(lanes[l]->out, r);
  }
  return nullptr;
}

inline const char* resolve_nothing(msim_simd_op* const*, uint32_t) { return nullptr; }

}  // namespace sync_detail
}  // namespace msim

namespace metal {

// ---- barriers ---------------------------------------------------------------------------

enum class mem_flags : uint32_t {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
  mem_object_data = 16,
};
constexpr mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(uint32_t(a) | uint32_t(b)); }
constexpr mem_flags operator&(mem_flags a, mem_flags b) { return mem_flags(uint32_t(a) & uint32_t(b)); }
constexpr mem_flags operator^(mem_flags a, mem_flags b) { return mem_flags(uint32_t(a) ^ uint32_t(b)); }
constexpr mem_flags operator~(mem_flags a) { return mem_flags(~uint32_t(a) & 31u); }

// Every thread of the threadgroup must reach this call site before any continues. The
// executor runs threads one at a time, so memory is always ordered; the flags only document.
inline void threadgroup_barrier(mem_flags flags,
                                msim::site at = {__builtin_LINE(), __builtin_COLUMN()}) {
  msim_thread* t = msim::self();
  t->launch->rt->threadgroup_barrier(t, uint32_t(flags), at.line, at.column);
}

// Every thread of the SIMD-group must reach it together (MSIM_SIMD_ALL): one in divergent
// code is reported.
inline void simdgroup_barrier(mem_flags flags,
                              msim::site at = {__builtin_LINE(), __builtin_COLUMN()}) {
  msim::sync_detail::rendezvous<char>("simdgroup_barrier", MSIM_SIMD_ALL,
                                      &msim::sync_detail::resolve_nothing, uint32_t(flags), 0, at);
}

// ---- votes ------------------------------------------------------------------------------

// Bit i stands for SIMD lane i (MSL spec 6.9.2.1). all() and any() look at the 32 lanes of an
// Apple GPU's SIMD-group, not at which lanes are active.
class simd_vote {
 public:
  typedef uint64_t vote_t;
  explicit constexpr simd_vote(vote_t v = 0) : v_(v) {}
  explicit constexpr operator vote_t() const { return v_; }
  constexpr bool all() const { return (v_ & kLanes) == kLanes; }
  constexpr bool any() const { return (v_ & kLanes) != 0; }

 private:
  static constexpr vote_t kLanes = (vote_t(1) << MSIM_SIMD_WIDTH) - 1;
  vote_t v_;
};

// Bit i stands for quad lane i; the constructor keeps the four bottom bits (MSL spec 6.9.3).
class quad_vote {
 public:
  typedef unsigned vote_t;
  explicit constexpr quad_vote(vote_t v = 0) : v_(v & 0xfu) {}
  explicit constexpr operator vote_t() const { return v_; }
  constexpr bool all() const { return v_ == 0xfu; }
  constexpr bool any() const { return v_ != 0; }

 private:
  vote_t v_;
};

// ---- SIMD-group and quad-group functions ---------------------------------------------------

#define MSIM_SITE msim::site at = {__builtin_LINE(), __builtin_COLUMN()}

#define MSIM_DEFINE_REDUCTION(name, op, width, check)                                           \
  template <class T>                                                                            \
  inline T name(T data, MSIM_SITE) {                                                            \
    MSIM_REQUIRE_SIMD_VALUE(T, #name);                                                          \
    check;                                                                                      \
    return msim::sync_detail::rendezvous<T>(                                                    \
        #name, MSIM_SIMD_ACTIVE, &msim::sync_detail::resolve_reduce<T, msim::sync_detail::op, width>, \
        data, 0, at);                                                                           \
  }

#define MSIM_INTEGER_ONLY(name)                                                                 \
  static_assert(msim::sync_detail::is_integer_value<T>(),                                       \
                #name "() is a bitwise operation: it takes integer scalars or vectors (MSL spec 6.9.2)")

MSIM_DEFINE_REDUCTION(simd_sum, op_sum, 32, (void)0)
MSIM_DEFINE_REDUCTION(simd_product, op_product, 32, (void)0)
MSIM_DEFINE_REDUCTION(simd_min, op_min, 32, (void)0)
MSIM_DEFINE_REDUCTION(simd_max, op_max, 32, (void)0)
MSIM_DEFINE_REDUCTION(simd_and, op_and, 32, MSIM_INTEGER_ONLY(simd_and))
MSIM_DEFINE_REDUCTION(simd_or, op_or, 32, MSIM_INTEGER_ONLY(simd_or))
MSIM_DEFINE_REDUCTION(simd_xor, op_xor, 32, MSIM_INTEGER_ONLY(simd_xor))
MSIM_DEFINE_REDUCTION(quad_sum, op_sum, 4, (void)0)
MSIM_DEFINE_REDUCTION(quad_product, op_product, 4, (void)0)
MSIM_DEFINE_REDUCTION(quad_min, op_min, 4, (void)0)
MSIM_DEFINE_REDUCTION(quad_max, op_max, 4, (void)0)
MSIM_DEFINE_REDUCTION(quad_and, op_and, 4, MSIM_INTEGER_ONLY(quad_and))
MSIM_DEFINE_REDUCTION(quad_or, op_or, 4, MSIM_INTEGER_ONLY(quad_or))
MSIM_DEFINE_REDUCTION(quad_xor, op_xor, 4, MSIM_INTEGER_ONLY(quad_xor))
#undef MSIM_DEFINE_REDUCTION
#undef MSIM_INTEGER_ONLY

#define MSIM_DEFINE_SCAN(name, op, width, inclusive)                                            \
  template <class T>                                                                            \
  inline T name(T data, MSIM_SITE) {                                                            \
    MSIM_REQUIRE_SIMD_VALUE(T, #name);                                                          \
    return msim::sync_detail::rendezvous<T>(                                                    \
        #name, MSIM_SIMD_ACTIVE,                                                                \
        &msim::sync_detail::resolve_scan<T, msim::sync_detail::op, width, inclusive>, data, 0, at); \
  }

MSIM_DEFINE_SCAN(simd_prefix_inclusive_sum, op_sum, 32, true)
MSIM_DEFINE_SCAN(simd_prefix_exclusive_sum, op_sum, 32, false)
MSIM_DEFINE_SCAN(simd_prefix_inclusive_product, op_product, 32, true)
MSIM_DEFINE_SCAN(simd_prefix_exclusive_product, op_product, 32, false)
MSIM_DEFINE_SCAN(quad_prefix_inclusive_sum, op_sum, 4, true)
MSIM_DEFINE_SCAN(quad_prefix_exclusive_sum, op_sum, 4, false)
MSIM_DEFINE_SCAN(quad_prefix_inclusive_product, op_product, 4, true)
MSIM_DEFINE_SCAN(quad_prefix_exclusive_product, op_product, 4, false)
#undef MSIM_DEFINE_SCAN

#define MSIM_DEFINE_PERMUTE(name, kind, width, argname)                                         \
  template <class T>                                                                            \
  inline T name(T data, ushort_arg argname, MSIM_SITE) {                                        \
    MSIM_REQUIRE_SIMD_VALUE(T, #name);                                                          \
    return msim::sync_detail::rendezvous<T>(                                                    \
        #name, MSIM_SIMD_ACTIVE,                                                                \
        &msim::sync_detail::resolve_permute<T, msim::sync_detail::permute::kind, width>, data,  \
        argname, at);                                                                           \
  }

// MSL declares these lane arguments as ushort.
typedef unsigned short ushort_arg;

MSIM_DEFINE_PERMUTE(simd_shuffle, shuffle, 32, simd_lane_id)
MSIM_DEFINE_PERMUTE(simd_broadcast, broadcast, 32, broadcast_lane_id)
MSIM_DEFINE_PERMUTE(simd_shuffle_up, up, 32, delta)
MSIM_DEFINE_PERMUTE(simd_shuffle_down, down, 32, delta)
MSIM_DEFINE_PERMUTE(simd_shuffle_rotate_up, rotate_up, 32, delta)
MSIM_DEFINE_PERMUTE(simd_shuffle_rotate_down, rotate_down, 32, delta)
MSIM_DEFINE_PERMUTE(simd_shuffle_xor, xor_, 32, mask)
MSIM_DEFINE_PERMUTE(quad_shuffle, shuffle, 4, quad_lane_id)
MSIM_DEFINE_PERMUTE(quad_broadcast, broadcast, 4, broadcast_lane_id)
MSIM_DEFINE_PERMUTE(quad_shuffle_up, up, 4, delta)
MSIM_DEFINE_PERMUTE(quad_shuffle_down, down, 4, delta)
MSIM_DEFINE_PERMUTE(quad_shuffle_rotate_up, rotate_up, 4, delta)
MSIM_DEFINE_PERMUTE(quad_shuffle_rotate_down, rotate_down, 4, delta)
MSIM_DEFINE_PERMUTE(quad_shuffle_xor, xor_, 4, mask)
#undef MSIM_DEFINE_PERMUTE

template <class T>
inline T simd_broadcast_first(T data, MSIM_SITE) {
  MSIM_REQUIRE_SIMD_VALUE(T, "simd_broadcast_first");
  return msim::sync_detail::rendezvous<T>(
      "simd_broadcast_first", MSIM_SIMD_ACTIVE,
      &msim::sync_detail::resolve_permute<T, msim::sync_detail::permute::broadcast_first, 32>, data, 0, at);
}
template <class T>
inline T quad_broadcast_first(T data, MSIM_SITE) {
  MSIM_REQUIRE_SIMD_VALUE(T, "quad_broadcast_first");
  return msim::sync_detail::rendezvous<T>(
      "quad_broadcast_first", MSIM_SIMD_ACTIVE,
      &msim::sync_detail::resolve_permute<T, msim::sync_detail::permute::broadcast_first, 4>, data, 0, at);
}

// Shuffle-and-fill: the modulo splits the group into vectors of that many lanes (MSL spec
// 6.9.2); without one it is the whole SIMD-group (or quad-group).
#define MSIM_DEFINE_FILL(name, kind, width)                                                     \
  template <class T>                                                                            \
  inline T name(T data, T filling_data, ushort_arg delta, ushort_arg modulo, MSIM_SITE) {       \
    MSIM_REQUIRE_SIMD_VALUE(T, #name);                                                          \
    return msim::sync_detail::rendezvous<T>(                                                    \
        #name, MSIM_SIMD_ACTIVE,                                                                \
        &msim::sync_detail::resolve_permute<T, msim::sync_detail::permute::kind, width>, data,  \
        int64_t(delta) | int64_t(modulo) << 16, at, &filling_data);                             \
  }                                                                                             \
  template <class T>                                                                            \
  inline T name(T data, T filling_data, ushort_arg delta, MSIM_SITE) {                          \
    return name(data, filling_data, delta, ushort_arg(width), at);                              \
  }

MSIM_DEFINE_FILL(simd_shuffle_and_fill_up, fill_up, 32)
MSIM_DEFINE_FILL(simd_shuffle_and_fill_down, fill_down, 32)
MSIM_DEFINE_FILL(quad_shuffle_and_fill_up, fill_up, 4)
MSIM_DEFINE_FILL(quad_shuffle_and_fill_down, fill_down, 4)
#undef MSIM_DEFINE_FILL

namespace detail_vote {
template <uint32_t W>
inline msim::sync_detail::vote_result vote(const char* name, bool expr, msim::site at) {
  return msim::sync_detail::rendezvous<msim::sync_detail::vote_result>(
      name, MSIM_SIMD_ACTIVE, &msim::sync_detail::resolve_vote<W>, expr, 0, at);
}
inline uint32_t lane_in(uint32_t width) {
  return msim::self()->thread_index_in_simdgroup % width;
}
}  // namespace detail_vote

inline simd_vote simd_ballot(bool expr, MSIM_SITE) {
  return simd_vote(detail_vote::vote<32>("simd_ballot", expr, at).yes);
}
inline simd_vote simd_active_threads_mask(MSIM_SITE) {
  return simd_vote(detail_vote::vote<32>("simd_active_threads_mask", true, at).active);
}
inline bool simd_all(bool expr, MSIM_SITE) {
  const auto r = detail_vote::vote<32>("simd_all", expr, at);
  return r.yes == r.active;
}
inline bool simd_any(bool expr, MSIM_SITE) {
  return detail_vote::vote<32>("simd_any", expr, at).yes != 0;
}
inline bool simd_is_first(MSIM_SITE) {
  const auto r = detail_vote::vote<32>("simd_is_first", true, at);
  return uint32_t(__builtin_ctzll(r.active)) == detail_vote::lane_in(32);
}
inline quad_vote quad_ballot(bool expr, MSIM_SITE) {
  return quad_vote(quad_vote::vote_t(detail_vote::vote<4>("quad_ballot", expr, at).yes));
}
inline quad_vote quad_active_threads_mask(MSIM_SITE) {
  return quad_vote(quad_vote::vote_t(detail_vote::vote<4>("quad_active_threads_mask", true, at).active));
}
inline bool quad_all(bool expr, MSIM_SITE) {
  const auto r = detail_vote::vote<4>("quad_all", expr, at);
  return r.yes == r.active;
}
inline bool quad_any(bool expr, MSIM_SITE) {
  return detail_vote::vote<4>("quad_any", expr, at).yes != 0;
}
inline bool quad_is_first(MSIM_SITE) {
  const auto r = detail_vote::vote<4>("quad_is_first", true, at);
  return uint32_t(__builtin_ctzll(r.active)) == detail_vote::lane_in(4);
}

// ---- simdgroup_matrix ---------------------------------------------------------------------
//
// Stored as on Apple GPUs: each of the 32 lanes holds two elements of the 8x8 matrix, so that
// thread_elements() means what it means on the hardware. Lane l holds (row, col) and
// (row, col + 1) with q = l / 4, row = (q & 4) + (l / 2) % 4, col = (q & 2) * 2 + (l % 2) * 2
// (the layout MLX's and MetalFlashAttention's kernels rely on). Operations are collective and
// need every lane of a full SIMD-group (MSIM_SIMD_ALL): a matrix operation in divergent code or
// in a partial SIMD-group is reported.

namespace matrix_detail {

inline void element_of_lane(uint32_t lane, uint32_t* row, uint32_t* col) {
  const uint32_t q = lane / 4;
  *row = (q & 4) + (lane / 2) % 4;
  *col = (q & 2) * 2 + (lane % 2) * 2;
}

inline const char* require_full(msim_simd_op* const* lanes, uint32_t n) {
  if (n == MSIM_SIMD_WIDTH) return nullptr;
  return msim::sync_detail::first_error(
      lanes, n,
      "%s at line %u: a simdgroup_matrix operation needs a full SIMD-group of %u threads, but "
      "this SIMD-group has %u (make the threadgroup size a multiple of %u)",
      lanes[0]->name, lanes[0]->line, MSIM_SIMD_WIDTH, n, MSIM_SIMD_WIDTH);
}

// The uniform arguments of simdgroup_load/store.
struct access_args {
  uint64_t elements_per_row, origin_x, origin_y;
  uint64_t transpose;
};

inline const char* resolve_access(msim_simd_op* const* lanes, uint32_t n) {
  if (const char* e = require_full(lanes, n)) return e;
  const access_args a0 = msim::sync_detail::load<access_args>(lanes[0]->in);
  for (uint32_t l = 1; l < n; ++l) {
    const access_args a = msim::sync_detail::load<access_args>(lanes[l]->in);
    if (a.elements_per_row != a0.elements_per_row || a.origin_x != a0.origin_x ||
        a.origin_y != a0.origin_y || a.transpose != a0.transpose)
      return msim::sync_detail::first_error(
          lanes, n,
          "%s at line %u: elements_per_row, matrix_origin and transpose_matrix must be the same "
          "for every thread of the SIMD-group, but lane 0 passes (%llu, (%llu, %llu), %d) and "
          "lane %u passes (%llu, (%llu, %llu), %d)",
          lanes[0]->name, lanes[0]->line, (unsigned long long)a0.elements_per_row,
          (unsigned long long)a0.origin_x, (unsigned long long)a0.origin_y, int(a0.transpose), l,
          (unsigned long long)a.elements_per_row, (unsigned long long)a.origin_x,
          (unsigned long long)a.origin_y, int(a.transpose));
  }
  return nullptr;
}

// The operands of a multiply travel as each lane's two elements of a, b and c.
constexpr unsigned kA = 0, kB = 16, kC = 32;

template <class T>
using pair = T __attribute__((ext_vector_type(2)));

template <class T>
inline void gather(msim_simd_op* const* lanes, unsigned offset, float m[8][8]) {
  for (uint32_t l = 0; l < MSIM_SIMD_WIDTH; ++l) {
    uint32_t r, c;
    element_of_lane(l, &r, &c);
    const pair<T> p = msim::sync_detail::load<pair<T>>(lanes[l]->in + offset);
    m[r][c] = float(p.x);
    m[r][c + 1] = float(p.y);
  }
}

// d = a * b (+ c), accumulated in float and rounded once to d's type.
template <class TD, class TA, class TB, class TC, bool Accumulate>
const char* resolve_multiply(msim_simd_op* const* lanes, uint32_t n) {
  if (const char* e = require_full(lanes, n)) return e;
  float a[8][8], b[8][8], c[8][8] = {};
  gather<TA>(lanes, kA, a);
  gather<TB>(lanes, kB, b);
  if (Accumulate) gather<TC>(lanes, kC, c);
  for (uint32_t l = 0; l < MSIM_SIMD_WIDTH; ++l) {
    uint32_t r, col;
    element_of_lane(l, &r, &col);
    float d0 = c[r][col], d1 = c[r][col + 1];
    for (int k = 0; k < 8; ++k) {
      d0 += a[r][k] * b[k][col];
      d1 += a[r][k] * b[k][col + 1];
    }
    const pair<TD> out = {TD(d0), TD(d1)};
    msim::sync_detail::store(lanes[l]->out, out);
  }
  return nullptr;
}

template <class T>
constexpr bool is_matrix_element() {
  return __is_same(T, float) || __is_same(T, _Float16) || __is_same(T, __bf16);
}

}  // namespace matrix_detail

template <class T, int Cols, int Rows>
struct simdgroup_matrix {
  static_assert(Cols == 8 && Rows == 8, "MSL's simdgroup_matrix is 8x8 (MSL spec 2.4)");
  static_assert(matrix_detail::is_matrix_element<T>(),
                "simdgroup_matrix elements are float, half or bfloat (MSL spec 2.4)");
  typedef T elements_type __attribute__((ext_vector_type(2)));

  // MSL leaves a default-constructed matrix undefined; the sim fills it with NaN so that using
  // one before loading it shows.
  simdgroup_matrix() : elements_{T(__builtin_nanf("")), T(__builtin_nanf(""))} {}
  // A diagonal matrix with `dval` on the diagonal.
  simdgroup_matrix(T dval) {
    uint32_t r, c;
    matrix_detail::element_of_lane(msim::self()->thread_index_in_simdgroup, &r, &c);
    elements_ = elements_type{r == c ? dval : T(0), r == c + 1 ? dval : T(0)};
  }

  // This lane's two elements (see the layout above).
  elements_type& thread_elements() { return elements_; }
  const elements_type& thread_elements() const { return elements_; }

 private:
  elements_type elements_;
};

typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<_Float16, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<__bf16, 8, 8> simdgroup_bfloat8x8;

template <class T, int Cols, int Rows>
inline simdgroup_matrix<T, Cols, Rows> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, Cols, Rows> m;
  m.thread_elements() = typename simdgroup_matrix<T, Cols, Rows>::elements_type{value, value};
  return m;
}

namespace matrix_detail {

// matrix_origin is a ulong2 (x = column, y = row of the matrix within memory); MSL code also
// passes a plain 0.
template <class O>
inline void origin_of(const O& o, uint64_t* x, uint64_t* y) {
  if constexpr (__is_arithmetic(O)) {
    *x = *y = uint64_t(o);
  } else {
    *x = uint64_t(o[0]);
    *y = uint64_t(o[1]);
  }
}

// The memory index of element (r, c): row-major with elements_per_row, origin in the matrix's
// coordinates; transposed, element (r, c) is read from memory row c, column r.
inline uint64_t index_of(const access_args& a, uint32_t r, uint32_t c) {
  return a.transpose ? (a.origin_x + c) * a.elements_per_row + (a.origin_y + r)
                     : (a.origin_y + r) * a.elements_per_row + (a.origin_x + c);
}

template <class T, class P>
inline void load(simdgroup_matrix<T, 8, 8>& d, P src, const access_args& a, msim::site at) {
  msim::sync_detail::rendezvous<char>("simdgroup_load", MSIM_SIMD_ALL, &resolve_access, a, 0, at);
  uint32_t r, c;
  element_of_lane(msim::self()->thread_index_in_simdgroup, &r, &c);
  d.thread_elements() = typename simdgroup_matrix<T, 8, 8>::elements_type{
      T(src[index_of(a, r, c)]), T(src[index_of(a, r, c + 1)])};
}

template <class T, class P>
inline void store(const simdgroup_matrix<T, 8, 8>& m, P dst, const access_args& a, msim::site at) {
  msim::sync_detail::rendezvous<char>("simdgroup_store", MSIM_SIMD_ALL, &resolve_access, a, 0, at);
  uint32_t r, c;
  element_of_lane(msim::self()->thread_index_in_simdgroup, &r, &c);
  dst[index_of(a, r, c)] = m.thread_elements().x;
  dst[index_of(a, r, c + 1)] = m.thread_elements().y;
}

}  // namespace matrix_detail

template <class T, int Cols, int Rows, class P>
inline void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, P src,
                           unsigned long elements_per_row = Cols, MSIM_SITE) {
  matrix_detail::load(d, src, {elements_per_row, 0, 0, 0}, at);
}
template <class T, int Cols, int Rows, class P, class O>
inline void simdgroup_load(simdgroup_matrix<T, Cols, Rows>& d, P src, unsigned long elements_per_row,
                           O matrix_origin, bool transpose_matrix = false, MSIM_SITE) {
  matrix_detail::access_args a{elements_per_row, 0, 0, transpose_matrix};
  matrix_detail::origin_of(matrix_origin, &a.origin_x, &a.origin_y);
  matrix_detail::load(d, src, a, at);
}
template <class T, int Cols, int Rows, class P>
inline void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, P dst,
                            unsigned long elements_per_row = Cols, MSIM_SITE) {
  matrix_detail::store(a, dst, {elements_per_row, 0, 0, 0}, at);
}
template <class T, int Cols, int Rows, class P, class O>
inline void simdgroup_store(const simdgroup_matrix<T, Cols, Rows>& a, P dst, unsigned long elements_per_row,
                            O matrix_origin, bool transpose_matrix = false, MSIM_SITE) {
  matrix_detail::access_args args{elements_per_row, 0, 0, transpose_matrix};
  matrix_detail::origin_of(matrix_origin, &args.origin_x, &args.origin_y);
  matrix_detail::store(a, dst, args, at);
}

namespace matrix_detail {
template <class TD, class TA, class TB, class TC, bool Accumulate>
inline void multiply(const char* name, simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                     const simdgroup_matrix<TB, 8, 8>& b, const simdgroup_matrix<TC, 8, 8>* c,
                     msim::site at) {
  struct operands {
    pair<TA> a __attribute__((aligned(16)));
    pair<TB> b __attribute__((aligned(16)));
    pair<TC> c __attribute__((aligned(16)));
  } in;
  static_assert(__builtin_offsetof(operands, b) == kB && __builtin_offsetof(operands, c) == kC, "layout");
  in.a = a.thread_elements();
  in.b = b.thread_elements();
  in.c = c ? c->thread_elements() : pair<TC>{TC(0), TC(0)};
  d.thread_elements() = msim::sync_detail::rendezvous<pair<TD>>(
      name, MSIM_SIMD_ALL, &resolve_multiply<TD, TA, TB, TC, Accumulate>, in, 0, at);
}
}  // namespace matrix_detail

// d = a * b
template <class TD, class TA, class TB>
inline void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                               const simdgroup_matrix<TB, 8, 8>& b, MSIM_SITE) {
  matrix_detail::multiply<TD, TA, TB, TD, false>("simdgroup_multiply", d, a, b, nullptr, at);
}
// d = a * b + c
template <class TD, class TA, class TB, class TC>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                          const simdgroup_matrix<TB, 8, 8>& b,
                                          const simdgroup_matrix<TC, 8, 8>& c, MSIM_SITE) {
  matrix_detail::multiply<TD, TA, TB, TC, true>("simdgroup_multiply_accumulate", d, a, b, &c, at);
}

#undef MSIM_SITE
#undef MSIM_REQUIRE_SIMD_VALUE

}  // namespace metal
