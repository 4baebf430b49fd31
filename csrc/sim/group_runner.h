// Runs one threadgroup at a time on the calling worker thread: the GPU threads, their
// threadgroup memory, and everything they synchronise on.
//
// A kernel that never synchronises runs as a plain loop over the group's threads (on one
// fiber, so that fail() and faults have a context to abandon). Any other kernel runs each GPU
// thread on its own fiber under a small scheduler: a loop on the worker's own stack starts
// threads and collects those that return, and a thread that stops at a barrier or a
// SIMD-group call does the bookkeeping itself and switches straight to the next ready thread:
//   - threadgroup_barrier parks a thread; when every thread of the group waits at the same
//     call site, all resume. A thread that returns while others wait at a barrier, or threads
//     waiting at different barriers, end the launch with an error.
//   - simd_sync parks a lane. When no lane of its SIMD-group can run any more (each waits at a
//     call site, at a barrier, or has returned), the lanes at the earliest call site (lowest
//     line, then column) form the active set; the op's resolve function runs once over them,
//     and they resume first, before other SIMD-groups, so a group without barriers keeps only
//     one SIMD-group's fibers alive at a time. Resolving the earliest site first makes lanes
//     that loop longer catch up before the code after the loop runs, the way structured
//     control flow reconverges on the GPU.
// Lanes meet by call site, so a helper function holding a SIMD-group call, called from both
// sides of a divergent branch, joins both sides into one rendezvous (the GPU would run two).
#pragma once
#include <pthread.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metalrt_sim_abi.h"
#include "sim/fiber.h"
#include "sim/launch_plan.h"
#include "sim/stack_pool.h"

namespace metalrt::sim {

// What the signal handler learned about a fault in kernel code.
struct FaultInfo {
  int signal = 0;
  int code = 0;
  uintptr_t address = 0;  // the faulting data address (SIGSEGV/SIGBUS)
  uintptr_t pc = 0;
  bool stack_overflow = false;
};

class GroupRunner {
 public:
  explicit GroupRunner(size_t stack_bytes);
  ~GroupRunner();
  GroupRunner(const GroupRunner&) = delete;
  GroupRunner& operator=(const GroupRunner&) = delete;

  // Runs group `group` (linear index, x fastest) of `plan` to completion. On failure returns
  // false with *failure filled; the runner stays usable.
  bool run(const LaunchPlan& plan, uint64_t group, GroupFailure* failure);

  // Bytes of threadgroup variables the last group allocated (static threadgroup memory).
  uint64_t static_threadgroup_bytes() const { return static_bytes_; }
  size_t stack_size() const { return stacks_.stack_size(); }

  // ---- for the fault handler (fault_handler.cpp); async-signal-safe ----
  void set_owner(pthread_t thread) { owner_ = thread; }
  pthread_t owner() const { return owner_; }
  bool in_kernel() const { return in_kernel_; }
  // Records a fault in kernel code and rewrites the interrupted context so that, once the
  // handler returns, the thread leaves the kernel and switches back to the scheduler. Returns
  // false where the platform's context layout is unknown.
  bool redirect_fault(int signal, const void* siginfo, void* ucontext);

  // ---- the executor ABI's runtime functions, called on the running GPU thread's fiber ----
  [[noreturn]] void fail(msim_thread* t, const char* message);
  void barrier(msim_thread* t, uint32_t line, uint32_t column);
  void simd_sync(msim_thread* t, msim_simd_op* op);
  void* threadgroup_alloc(msim_thread* t, uint32_t slot, uint64_t size, uint64_t align);
  const msim_region* find_region(const msim_thread* t, const void* p, uint64_t size) const;

 private:
  enum class State : uint8_t { Ready, Running, AtBarrier, AtSimd, Done };

  struct Slot {
    FiberContext ctx;
    Stack* stack = nullptr;
    State state = State::Ready;
    msim_simd_op* op = nullptr;     // while AtSimd
    uint32_t line = 0, column = 0;  // while AtBarrier
  };

  struct SimdGroup {
    uint32_t lanes = 0;    // lanes that exist
    uint32_t runnable = 0; // lanes Ready or Running
    uint32_t waiting = 0;  // bit l: lane l is AtSimd
  };

  // A deque of thread indices; each thread is in it at most once.
  struct ReadyQueue {
    uint16_t items[MSIM_MAX_THREADS_PER_GROUP];
    uint32_t head = 0, count = 0;
    void clear() { head = count = 0; }
    bool empty() const { return count == 0; }
    void push_back(uint32_t i) { items[(head + count++) % MSIM_MAX_THREADS_PER_GROUP] = uint16_t(i); }
    void push_front(uint32_t i) {
      head = (head + MSIM_MAX_THREADS_PER_GROUP - 1) % MSIM_MAX_THREADS_PER_GROUP;
      items[head] = uint16_t(i);
      ++count;
    }
    uint32_t pop_front() {
      const uint32_t i = items[head];
      head = (head + 1) % MSIM_MAX_THREADS_PER_GROUP;
      --count;
      return i;
    }
  };

  void begin_group(uint64_t group);
  void prepare_threads();
  void start_thread(uint32_t i);
  void run_plain();
  void run_fibers();
  FiberContext* activate(uint32_t i);
  void resume(uint32_t i);
  void block(uint32_t i);
  void hand_over(FiberContext* from, uint32_t self);
  void release_exited();
  std::string no_stack_message() const;
  void yield_to_scheduler(FiberContext* from);
  static void fiber_main(void* self);
  static void plain_main(void* self);
  [[noreturn]] static void fault_landing(GroupRunner* self);

  // Scheduler events.
  void on_exit(uint32_t i);
  void on_barrier(uint32_t i);
  void on_simd(uint32_t i);
  void resolve_simdgroup(uint32_t sg);
  void release_barrier();

  void group_error(std::string message);
  void thread_error(const msim_thread& t, std::string message);
  std::string describe_lane(uint32_t i) const;
  std::string fault_message() const;
  std::string format_failure() const;

  // The launch and group being run.
  const LaunchPlan* plan_ = nullptr;
  uint32_t group_pos_[3] = {};
  uint32_t group_dim_[3] = {};
  uint32_t n_ = 0;  // threads in this group

  // Threads and fibers; threads_[0] doubles as the plain loop's thread.
  msim_thread common_{};  // the fields every thread of the group shares
  std::unique_ptr<msim_thread[]> threads_;
  std::unique_ptr<Slot[]> slots_;
  SimdGroup simdgroups_[MSIM_MAX_THREADS_PER_GROUP / MSIM_SIMD_WIDTH];
  msim_simd_op* lanes_[MSIM_SIMD_WIDTH] = {};  // the resolve function's argument; null when idle
  ReadyQueue ready_;
  StackPool stacks_;
  FiberContext scheduler_;
  FiberContext plain_;
  FiberContext* running_ = nullptr;  // context of the fiber now running
  Stack* running_stack_ = nullptr;
  Stack* exited_ = nullptr;          // the stack of a thread that just returned, still in use
  const msim_thread* running_thread_ = nullptr;
  uint32_t current_ = 0;             // thread index of the running fiber (fiber mode)

  // Barrier bookkeeping.
  uint32_t at_barrier_ = 0;
  uint16_t barrier_arrivals_[MSIM_MAX_THREADS_PER_GROUP];
  uint32_t barrier_first_ = 0;       // a thread at the open barrier: its site is the barrier's
  uint32_t done_ = 0;
  uint32_t first_done_ = 0;

  // Threadgroup memory: [[threadgroup(i)]] regions first, then threadgroup variables.
  std::unique_ptr<unsigned char[]> arena_storage_;
  unsigned char* arena_ = nullptr;
  uint64_t arena_used_ = 0;
  uint64_t static_bytes_ = 0;
  std::vector<msim_region> threadgroup_args_;  // by parameter position
  std::vector<int32_t> slot_region_;           // threadgroup variable slot -> static_regions_
  std::vector<uint32_t> used_slots_;
  std::vector<msim_region> static_regions_;    // capacity fixed: find_region hands out pointers

  // The failure of the group, if any.
  bool failed_ = false;
  bool thread_failed_ = false;  // error_ concerns error_thread_
  msim_thread error_thread_{};
  std::string error_;
  volatile bool fault_pending_ = false;
  FaultInfo fault_;

  pthread_t owner_{};
  volatile bool in_kernel_ = false;
};

// The function table every launch hands to kernel code (msim_launch::rt).
const msim_runtime* runtime_table();

}  // namespace metalrt::sim
