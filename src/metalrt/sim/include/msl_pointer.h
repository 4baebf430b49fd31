// Checked pointers for MSL's device, constant and threadgroup address spaces.
//
// The front end rewrites `device T*` to msim::ptr<T, msim::device_space>, `constant T*` to
// msim::ptr<const T, msim::constant_space> and `threadgroup T*` to
// msim::ptr<T, msim::threadgroup_space>, wherever they are written (parameters, locals, casts).
// A ptr carries the bounds of the region it points into and checks every access with one
// compare; an access outside ends the launch with a LaunchError that names the buffer, the
// index and the size, so a kernel's stray write never lands outside its buffer.
// `constant` pointees are const, so writes through them do not compile, as in MSL.
// `thread T*` stays a raw pointer: thread memory is the kernel's own stack.
#pragma once
#include "msl_context.h"
#include "msl_types.h"

namespace msim {

struct device_space { static constexpr const char* name = "device"; };
struct constant_space { static constexpr const char* name = "constant"; };
struct threadgroup_space { static constexpr const char* name = "threadgroup"; };

// A program-scope `constant` object, so a pointer made from its address knows its bounds. The
// generated code defines the table (one entry per program-scope constant, plus a terminator).
struct static_region {
  const void* data;
  unsigned long size;
  const char* name;
};
extern const static_region static_regions[];

// The names of kernel parameters by declaration position, for messages about pointers made
// from raw addresses (generated; one string per position, naming every kernel's parameter
// there when the library's kernels disagree). Terminated by nullptr.
extern const char* const param_names[];
extern const unsigned param_name_count;

inline const char* region_name(const msim_thread* t, const msim_region* r) {
  const msim_launch* l = t->launch;
  if (r >= l->args && r < l->args + l->nargs) {
    unsigned pos = unsigned(r - l->args);
    if (pos < param_name_count) return param_names[pos];
  }
  if (t->threadgroup_args && r >= t->threadgroup_args && r < t->threadgroup_args + l->nargs) {
    unsigned pos = unsigned(r - t->threadgroup_args);
    if (pos < param_name_count) return param_names[pos];
  }
  return nullptr;
}

template <class T> constexpr unsigned long object_size() {
  if constexpr (is_same<remove_cv_t<T>, void>::value) return 1;
  else return sizeof(T);
}

[[noreturn]] __attribute__((noinline, cold)) inline void out_of_bounds(
    const char* space, const char* name, long offset, unsigned long size, unsigned long elem) {
  const char* what = size == 0 ? "null or empty" : "out-of-bounds";
  if (name)
    failf("%s access through a %s pointer into buffer '%s': element %ld (byte offset %ld, %lu-byte "
          "elements) is outside its %lu bytes (%lu elements)",
          what, space, name, offset / long(elem), offset, elem, size, size / elem);
  failf("%s access through a %s pointer: element %ld (byte offset %ld, %lu-byte elements) is "
        "outside its region of %lu bytes (%lu elements)",
        what, space, offset / long(elem), offset, elem, size, size / elem);
}

template <class T, class Space> class ptr {
 public:
  using element_type = T;
  using space = Space;

  ptr() = default;
  ptr(decltype(nullptr)) {}

  // From a raw address such as &buf[i]: the bounds are those of the bound buffer, threadgroup
  // memory or program-scope constant that holds it.
  ptr(T* raw) : p_(raw) {
    if (raw) locate(raw);
  }

  // Array-to-pointer decay of a threadgroup or program-scope constant array: the bounds are
  // those of the whole allocation (a row of a 2D tile may be walked past its end, as on the GPU).
  template <class U, __SIZE_TYPE__ N, enable_if_t<__is_convertible(U*, T*), int> = 0>
  ptr(U (&array)[N]) : p_(array) {
    locate(array);
  }

  // device float* -> const device float*, and the like.
  template <class U, enable_if_t<__is_convertible(U*, T*) && !is_same<U, T>::value, int> = 0>
  ptr(const ptr<U, Space>& o) : p_(o.p_), base_(o.base_), size_(o.size_), name_(o.name_) {}

  static ptr from_region(const msim_region* r, const char* name) {
    ptr p;
    p.p_ = reinterpret_cast<T*>(r->data);
    p.base_ = reinterpret_cast<const char*>(r->data);
    p.size_ = r->size;
    p.name_ = name;
    return p;
  }

  // reinterpret_cast / C-style cast between pointee types: same bytes, same bounds.
  template <class U> ptr<U, Space> cast() const {
    ptr<U, Space> o;
    o.p_ = (U*)(p_);
    o.base_ = base_;
    o.size_ = size_;
    o.name_ = name_;
    return o;
  }

  template <class I, enable_if_t<is_int_scalar<I>::value || is_same<I, bool>::value, int> = 0>
  T& operator[](I i) const {
    return *checked(i);
  }
  T& operator*() const { return *checked(0); }
  T* operator->() const { return checked(0); }

  template <class I, enable_if_t<is_int_scalar<I>::value, int> = 0> ptr operator+(I i) const {
    return moved(long(i));
  }
  template <class I, enable_if_t<is_int_scalar<I>::value, int> = 0>
  friend ptr operator+(I i, const ptr& p) {
    return p.moved(long(i));
  }
  template <class I, enable_if_t<is_int_scalar<I>::value, int> = 0> ptr operator-(I i) const {
    return moved(-long(i));
  }
  long operator-(const ptr& o) const { return long(p_ - o.p_); }
  template <class I, enable_if_t<is_int_scalar<I>::value, int> = 0> ptr& operator+=(I i) {
    return *this = moved(long(i));
  }
  template <class I, enable_if_t<is_int_scalar<I>::value, int> = 0> ptr& operator-=(I i) {
    return *this = moved(-long(i));
  }
  ptr& operator++() { return *this = moved(1); }
  ptr& operator--() { return *this = moved(-1); }
  ptr operator++(int) {
    ptr old = *this;
    *this = moved(1);
    return old;
  }
  ptr operator--(int) {
    ptr old = *this;
    *this = moved(-1);
    return old;
  }

  explicit operator bool() const { return p_ != nullptr; }
  bool operator!() const { return p_ == nullptr; }
  friend bool operator==(const ptr& a, const ptr& b) { return a.p_ == b.p_; }
  friend bool operator!=(const ptr& a, const ptr& b) { return a.p_ != b.p_; }
  friend bool operator<(const ptr& a, const ptr& b) { return a.p_ < b.p_; }
  friend bool operator<=(const ptr& a, const ptr& b) { return a.p_ <= b.p_; }
  friend bool operator>(const ptr& a, const ptr& b) { return a.p_ > b.p_; }
  friend bool operator>=(const ptr& a, const ptr& b) { return a.p_ >= b.p_; }
  friend bool operator==(const ptr& a, decltype(nullptr)) { return a.p_ == nullptr; }
  friend bool operator!=(const ptr& a, decltype(nullptr)) { return a.p_ != nullptr; }

  // The unchecked address, for the shim's own functions (atomics, SIMD-group loads) after they
  // have checked the range they touch with check_range().
  T* raw() const { return p_; }
  void check_range(long first, long count) const {
    checked(first);
    if (count > 1) checked(first + count - 1);
  }

  T* p_ = nullptr;
  const char* base_ = nullptr;
  unsigned long size_ = 0;
  const char* name_ = nullptr;

 private:
  ptr moved(long i) const {
    ptr o = *this;
    o.p_ = (T*)((unsigned long)p_ + (unsigned long)i * object_size<T>());
    return o;
  }

  T* checked(long i) const {
    unsigned long off = (unsigned long)p_ - (unsigned long)base_ + (unsigned long)i * object_size<T>();
    if (__builtin_expect(off + object_size<T>() > size_ || off > size_, 0))
      out_of_bounds(Space::name, name_, long(off), size_, object_size<T>());
    return (T*)(base_ + off);
  }

  // Takes the bounds of the region holding p: a bound buffer or threadgroup allocation (the
  // executor knows them) or a program-scope constant. Any other address ends the launch.
  void locate(const void* p) {
    msim_thread* t = self();
    if (const msim_region* r = t->launch->rt->find_region(t, p, object_size<T>())) {
      base_ = reinterpret_cast<const char*>(r->data);
      size_ = r->size;
      name_ = region_name(t, r);
      return;
    }
    for (const static_region* s = static_regions; s->data; ++s) {
      const char* b = static_cast<const char*>(s->data);
      if (static_cast<const char*>(p) >= b && static_cast<const char*>(p) < b + s->size) {
        base_ = b;
        size_ = s->size;
        name_ = s->name;
        return;
      }
    }
    failf("a %s pointer was made from an address that is in no bound buffer or threadgroup "
          "allocation: MSL pointers into %s memory can only point into memory of that address "
          "space", Space::name, Space::name);
  }

  template <class, class> friend class ptr;
};

// reinterpret_cast<device U*>(p), (device U*)p, static_cast<...>(p) as the front end emits them.
template <class P, class T, class S> inline P ptr_cast(const ptr<T, S>& p) {
  return p.template cast<typename P::element_type>();
}
template <class P, class T> inline P ptr_cast(T* raw) {
  return P((typename P::element_type*)(raw));
}
template <class P> inline P ptr_cast(decltype(nullptr)) { return P(); }

// Storage for `threadgroup T name;` declared in a kernel: the executor hands every thread of
// the group the same (poisoned) block; `slot` numbers the declaration in the source.
template <class T> inline T& threadgroup_variable(unsigned slot) {
  msim_thread* t = self();
  return *static_cast<T*>(t->launch->rt->threadgroup_alloc(t, slot, sizeof(T), alignof(T)));
}

}  // namespace msim
