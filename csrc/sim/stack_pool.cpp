#include "sim/stack_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#ifndef MAP_STACK
#define MAP_STACK 0
#endif

namespace metalrt::sim {

size_t StackPool::page_size() {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return page;
}

StackPool::StackPool(size_t usable_bytes) : guard_(page_size()) {
  const size_t page = page_size();
  usable_ = (usable_bytes + page - 1) / page * page;
}

StackPool::~StackPool() {
  for (Stack* s : all_) {
    munmap(s->guard, guard_ + s->size);
    delete s;
  }
}

Stack* StackPool::take() noexcept {
  if (!free_.empty()) {
    Stack* s = free_.back();
    free_.pop_back();
    return s;
  }
  const size_t bytes = guard_ + usable_;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* base = static_cast<unsigned char*>(p);
  Stack* s = nullptr;
  if (mprotect(base, guard_, PROT_NONE) == 0) {
    try {
      all_.reserve(all_.size() + 1);
      free_.reserve(all_.size() + 1);  // so that give() never allocates
      s = new Stack{base, base + guard_, usable_};
      all_.push_back(s);
    } catch (...) {
      delete s;
      s = nullptr;
      errno = ENOMEM;
    }
  }
  if (!s) {
    const int err = errno;
    munmap(p, bytes);
    errno = err;
  }
  return s;
}

}  // namespace metalrt::sim
