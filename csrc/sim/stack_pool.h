// Fiber stacks: mapped with mmap, each with an inaccessible guard page below it so that an
// overflowing kernel thread faults (and the executor reports a stack overflow) instead of
// writing into its neighbour. Pages are committed only when touched, so a kernel that uses a
// few hundred bytes of stack costs a page or two per fiber, not the whole mapping. One pool
// per worker thread, no locking; stacks are reused last-in first-out so the hot ones stay in
// cache.
#pragma once
#include <cstddef>
#include <vector>

namespace metalrt::sim {

struct Stack {
  unsigned char* guard;  // lowest address of the mapping: the guard page(s)
  unsigned char* lo;     // lowest usable address
  size_t size;           // usable bytes
};

class StackPool {
 public:
  // `usable_bytes` is rounded up to whole pages.
  explicit StackPool(size_t usable_bytes);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // nullptr when the system refuses to map more memory (errno says why). Never throws: it is
  // called on fibers, whose kernel frames exceptions cannot cross.
  Stack* take() noexcept;
  void give(Stack* stack) { free_.push_back(stack); }

  size_t stack_size() const { return usable_; }
  static size_t page_size();

 private:
  size_t usable_;
  size_t guard_;
  std::vector<Stack*> all_;
  std::vector<Stack*> free_;
};

}  // namespace metalrt::sim
