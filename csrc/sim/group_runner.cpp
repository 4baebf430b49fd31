#include "sim/group_runner.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <signal.h>
#if defined(__APPLE__)
#include <sys/ucontext.h>  // <ucontext.h> is deprecated there and needs _XOPEN_SOURCE
#else
#include <ucontext.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace metalrt::sim {

namespace {

constexpr uint32_t kSimd = MSIM_SIMD_WIDTH;
constexpr uint32_t kMaxThreadgroupVariables = 256;
constexpr uint64_t kArenaAlign = 64;

GroupRunner* runner_of(const msim_thread* t) { return static_cast<GroupRunner*>(t->executor); }

void rt_fail(msim_thread* t, const char* message) { runner_of(t)->fail(t, message); }
void rt_barrier(msim_thread* t, uint32_t /*mem_flags*/, uint32_t line, uint32_t column) {
  runner_of(t)->barrier(t, line, column);
}
void rt_simd_sync(msim_thread* t, msim_simd_op* op) { runner_of(t)->simd_sync(t, op); }
void* rt_threadgroup_alloc(msim_thread* t, uint32_t slot, uint64_t size, uint64_t align) {
  return runner_of(t)->threadgroup_alloc(t, slot, size, align);
}
const msim_region* rt_find_region(msim_thread* t, const void* p, uint64_t size) {
  return runner_of(t)->find_region(t, p, size);
}

const msim_runtime kRuntime = {rt_fail, rt_barrier, rt_simd_sync, rt_threadgroup_alloc,
                               rt_find_region};

std::string triple(const uint32_t v[3]) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ", " + std::to_string(v[2]) + ")";
}

std::string at_site(uint32_t line, uint32_t column) {
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// "0-15, 17, 20-21"
std::string lane_list(const bool present[kSimd], uint32_t lanes) {
  std::string out;
  for (uint32_t l = 0; l < lanes;) {
    if (!present[l]) { ++l; continue; }
    uint32_t end = l;
    while (end + 1 < lanes && present[end + 1]) ++end;
    if (!out.empty()) out += ", ";
    out += std::to_string(l);
    if (end > l) out += "-" + std::to_string(end);
    l = end + 1;
  }
  return out;
}

// The position of thread `index` (x fastest) of the running group, in every form MSL has.
inline void place_thread(msim_thread& t, uint32_t index, uint32_t x, uint32_t y, uint32_t z,
                         const uint32_t group_pos[3], const uint32_t nominal[3], uint32_t n) {
  t.thread_position_in_threadgroup[0] = x;
  t.thread_position_in_threadgroup[1] = y;
  t.thread_position_in_threadgroup[2] = z;
  t.thread_position_in_grid[0] = group_pos[0] * nominal[0] + x;
  t.thread_position_in_grid[1] = group_pos[1] * nominal[1] + y;
  t.thread_position_in_grid[2] = group_pos[2] * nominal[2] + z;
  t.thread_index_in_threadgroup = index;
  t.thread_index_in_simdgroup = index % kSimd;
  t.simdgroup_index_in_threadgroup = index / kSimd;
  t.thread_index_in_quadgroup = index % 4;
  t.quadgroup_index_in_threadgroup = index / 4;
  const uint32_t sg_base = index - index % kSimd;
  t.lanes_in_simdgroup = std::min(kSimd, n - sg_base);
}

}  // namespace

const msim_runtime* runtime_table() { return &kRuntime; }

GroupRunner::GroupRunner(size_t stack_bytes)
    : threads_(new msim_thread[MSIM_MAX_THREADS_PER_GROUP]()),
      slots_(new Slot[MSIM_MAX_THREADS_PER_GROUP]),
      stacks_(stack_bytes),
      arena_storage_(new unsigned char[MSIM_MAX_THREADGROUP_MEMORY + kArenaAlign]) {
  const auto base = reinterpret_cast<uintptr_t>(arena_storage_.get());
  arena_ = reinterpret_cast<unsigned char*>((base + kArenaAlign - 1) & ~(kArenaAlign - 1));
  static_regions_.reserve(kMaxThreadgroupVariables);
}

GroupRunner::~GroupRunner() = default;

bool GroupRunner::run(const LaunchPlan& plan, uint64_t group, GroupFailure* failure) {
  plan_ = &plan;
  failed_ = thread_failed_ = false;
  fault_pending_ = false;
  error_.clear();
  try {
    begin_group(group);
    if (plan.uses_fibers)
      run_fibers();
    else
      run_plain();
  } catch (const std::exception& e) {  // out of memory in the executor's own bookkeeping
    for (uint32_t i = 0; i < MSIM_MAX_THREADS_PER_GROUP; ++i)
      if (slots_[i].stack) stacks_.give(std::exchange(slots_[i].stack, nullptr));
    release_exited();
    group_error(e.what());
  }
  if (!failed_) return true;
  failure->group = group;
  failure->message = format_failure();
  return false;
}

void GroupRunner::begin_group(uint64_t group) {
  const msim_launch& launch = plan_->abi;
  uint64_t g = group;
  group_pos_[0] = uint32_t(g % launch.threadgroups_per_grid[0]);
  g /= launch.threadgroups_per_grid[0];
  group_pos_[1] = uint32_t(g % launch.threadgroups_per_grid[1]);
  group_pos_[2] = uint32_t(g / launch.threadgroups_per_grid[1]);
  n_ = 1;
  for (int d = 0; d < 3; ++d) {
    // Edge groups of a dispatch by thread count are partial, as on Apple GPUs.
    const uint32_t nominal = launch.dispatch_threads_per_threadgroup[d];
    const uint64_t start = uint64_t(group_pos_[d]) * nominal;
    group_dim_[d] = uint32_t(std::min<uint64_t>(nominal, launch.threads_per_grid[d] - start));
    n_ *= group_dim_[d];
  }

  // Fresh, poisoned threadgroup memory: [[threadgroup(i)]] regions first.
  threadgroup_args_.assign(launch.nargs, msim_region{});
  arena_used_ = 0;
  for (const LaunchPlan::ThreadgroupParam& p : plan_->threadgroup_params) {
    msim_region& r = threadgroup_args_[p.position];
    r.data = arena_ + arena_used_;
    r.size = p.bytes;
    r.kind = MSIM_ARG_THREADGROUP;
    r.writable = 1;
    std::memset(r.data, plan_->poison, p.bytes);
    arena_used_ += (p.bytes + 15) / 16 * 16;
  }
  for (uint32_t slot : used_slots_) slot_region_[slot] = -1;
  used_slots_.clear();
  static_regions_.clear();
  static_bytes_ = 0;
}

void GroupRunner::prepare_threads() {
  msim_thread& c = common_;
  c = msim_thread{};
  c.launch = &plan_->abi;
  c.threadgroup_args = threadgroup_args_.data();
  for (int d = 0; d < 3; ++d) {
    c.threadgroup_position_in_grid[d] = group_pos_[d];
    c.threads_per_threadgroup[d] = group_dim_[d];
  }
  c.threads_per_simdgroup = kSimd;
  c.simdgroups_per_threadgroup = (n_ + kSimd - 1) / kSimd;
  c.quadgroups_per_threadgroup = (n_ + 3) / 4;
  c.executor = this;
}

// Fills thread i's context when its fiber first starts, while that memory is about to be used.
void GroupRunner::start_thread(uint32_t i) {
  threads_[i] = common_;
  const uint32_t* nominal = plan_->abi.dispatch_threads_per_threadgroup;
  if (group_dim_[0] == n_) {  // a 1-D group
    place_thread(threads_[i], i, i, 0, 0, group_pos_, nominal, n_);
    return;
  }
  const uint32_t x = i % group_dim_[0], yz = i / group_dim_[0];
  place_thread(threads_[i], i, x, yz % group_dim_[1], yz / group_dim_[1], group_pos_, nominal, n_);
}

// ---- plain loop -----------------------------------------------------------------------------

void GroupRunner::run_plain() {
  prepare_threads();
  threads_[0] = common_;  // the loop rewrites its position for each thread
  Stack* stack = stacks_.take();
  if (!stack) {
    group_error(no_stack_message());
    return;
  }
  make_fiber(&plain_, stack->lo, stack->size, &GroupRunner::plain_main, this);
  running_ = &plain_;
  running_stack_ = stack;
  running_thread_ = &threads_[0];
  plan_->set_current(&threads_[0]);
  in_kernel_ = true;
  switch_fiber(&scheduler_, &plain_);
  in_kernel_ = false;
  running_stack_ = nullptr;
  stacks_.give(stack);
}

void GroupRunner::plain_main(void* arg) {
  auto* self = static_cast<GroupRunner*>(arg);
  msim_thread& t = self->threads_[0];
  const msim_entry_fn entry = self->plan_->kernel->entry;
  const uint32_t* nominal = self->plan_->abi.dispatch_threads_per_threadgroup;
  const uint32_t dx = self->group_dim_[0], dy = self->group_dim_[1], dz = self->group_dim_[2];
  const uint32_t n = self->n_;
  if (self->plan_->order == ThreadOrder::Forward) {
    uint32_t i = 0;
    for (uint32_t z = 0; z < dz; ++z)
      for (uint32_t y = 0; y < dy; ++y)
        for (uint32_t x = 0; x < dx; ++x, ++i) {
          place_thread(t, i, x, y, z, self->group_pos_, nominal, n);
          entry(&t);
        }
  } else {
    uint32_t i = n;
    for (uint32_t z = dz; z-- > 0;)
      for (uint32_t y = dy; y-- > 0;)
        for (uint32_t x = dx; x-- > 0;) {
          place_thread(t, --i, x, y, z, self->group_pos_, nominal, n);
          entry(&t);
        }
  }
  self->yield_to_scheduler(&self->plain_);
  __builtin_unreachable();
}

// ---- fibers ---------------------------------------------------------------------------------

void GroupRunner::run_fibers() {
  prepare_threads();
  for (uint32_t i = 0; i < n_; ++i) {
    slots_[i].state = State::Ready;
    slots_[i].stack = nullptr;
  }
  const uint32_t nsg = (n_ + kSimd - 1) / kSimd;
  for (uint32_t sg = 0; sg < nsg; ++sg) {
    simdgroups_[sg].lanes = std::min(kSimd, n_ - sg * kSimd);
    simdgroups_[sg].runnable = simdgroups_[sg].lanes;
    simdgroups_[sg].waiting = 0;
  }
  at_barrier_ = done_ = 0;
  ready_.clear();
  const bool forward = plan_->order == ThreadOrder::Forward;
  for (uint32_t k = 0; k < n_; ++k) ready_.push_back(forward ? k : n_ - 1 - k);

  // Fibers hand over to each other directly (see block()); control comes back here when the
  // group fails or nothing is ready.
  while (!ready_.empty() && !failed_) resume(ready_.pop_front());
  if (!failed_ && done_ != n_)
    group_error("internal error: the scheduler ran out of runnable threads with " +
                std::to_string(n_ - done_) + " threads unfinished");
  // Threads parked when the group failed are abandoned: kernel code holds nothing to release.
  release_exited();
  for (uint32_t i = 0; i < n_; ++i)
    if (slots_[i].stack) stacks_.give(std::exchange(slots_[i].stack, nullptr));
}

// Makes thread i the running one (starting its fiber if it has none yet) and returns the
// context to switch to; nullptr, with the group failed, when no stack can be had.
FiberContext* GroupRunner::activate(uint32_t i) {
  Slot& s = slots_[i];
  if (!s.stack) {
    s.stack = stacks_.take();
    if (!s.stack) {
      group_error(no_stack_message());
      return nullptr;
    }
    start_thread(i);
    make_fiber(&s.ctx, s.stack->lo, s.stack->size, &GroupRunner::fiber_main, this);
  }
  s.state = State::Running;
  current_ = i;
  running_ = &s.ctx;
  running_stack_ = s.stack;
  running_thread_ = &threads_[i];
  plan_->set_current(&threads_[i]);
  in_kernel_ = true;
  return &s.ctx;
}

std::string GroupRunner::no_stack_message() const {
  return std::string("cannot map another ") + std::to_string(stacks_.stack_size() / 1024) +
         " KiB fiber stack: " + std::strerror(errno) + " (the machine is out of memory or address space)";
}

// The stack of a thread that just returned goes back to the pool once nothing runs on it any
// more: here, at every point where a context resumes after a switch.
void GroupRunner::release_exited() {
  if (exited_) stacks_.give(std::exchange(exited_, nullptr));
}

void GroupRunner::resume(uint32_t i) {
  if (FiberContext* to = activate(i)) switch_fiber(&scheduler_, to);
  in_kernel_ = false;
  running_stack_ = nullptr;
  release_exited();
}

// A GPU thread stops at a barrier or a SIMD-group call: the scheduler's work for that event
// runs right here, on the thread's fiber, which then switches straight to the next ready
// thread (or simply carries on when that is itself) instead of going through the scheduler's
// stack: half the switches.
void GroupRunner::block(uint32_t i) {
  in_kernel_ = false;
  if (slots_[i].state == State::AtBarrier)
    on_barrier(i);
  else
    on_simd(i);
  hand_over(&slots_[i].ctx, i);
  release_exited();
}

// Switches from the calling fiber (thread `self`) to the next ready thread; to the scheduler
// when the group failed or nothing is ready.
void GroupRunner::hand_over(FiberContext* from, uint32_t self) {
  FiberContext* to = nullptr;
  if (!failed_ && !ready_.empty()) {
    const uint32_t next = ready_.pop_front();
    to = activate(next);
    if (next == self) return;
  }
  switch_fiber(from, to ? to : &scheduler_);
}

void GroupRunner::yield_to_scheduler(FiberContext* from) { switch_fiber(from, &scheduler_); }

void GroupRunner::fiber_main(void* arg) {
  auto* self = static_cast<GroupRunner*>(arg);
  self->release_exited();
  const uint32_t i = self->current_;
  self->plan_->kernel->entry(&self->threads_[i]);
  // The thread returned: account for it here and hand over, like block().
  self->in_kernel_ = false;
  self->slots_[i].state = State::Done;
  self->exited_ = std::exchange(self->slots_[i].stack, nullptr);
  self->on_exit(i);
  self->hand_over(&self->slots_[i].ctx, i);
  __builtin_unreachable();
}

// ---- what GPU threads call --------------------------------------------------------------------

void GroupRunner::fail(msim_thread* t, const char* message) {
  thread_error(*t, message && *message ? message : "the kernel failed without a message");
  yield_to_scheduler(running_);
  __builtin_unreachable();
}

void GroupRunner::barrier(msim_thread* t, uint32_t line, uint32_t column) {
  if (!plan_->uses_fibers)
    fail(t, "internal error: the kernel calls threadgroup_barrier but its library does not "
            "declare MSIM_USES_BARRIER (a bug in the sim's front end)");
  const uint32_t i = t->thread_index_in_threadgroup;
  Slot& s = slots_[i];
  s.state = State::AtBarrier;
  s.line = line;
  s.column = column;
  block(i);
}

void GroupRunner::simd_sync(msim_thread* t, msim_simd_op* op) {
  if (!plan_->uses_fibers)
    fail(t, "internal error: the kernel calls a SIMD-group function but its library does not "
            "declare MSIM_USES_SIMD (a bug in the sim's front end)");
  op->lane = t->thread_index_in_simdgroup;
  const uint32_t i = t->thread_index_in_threadgroup;
  Slot& s = slots_[i];
  s.state = State::AtSimd;
  s.op = op;
  block(i);
}

void* GroupRunner::threadgroup_alloc(msim_thread* t, uint32_t slot, uint64_t size, uint64_t align) {
  if (slot < slot_region_.size() && slot_region_[slot] >= 0) {
    const msim_region& r = static_regions_[size_t(slot_region_[slot])];
    if (r.size != size)
      fail(t, ("internal error: threadgroup variable " + std::to_string(slot) + " was allocated with " +
               std::to_string(r.size) + " bytes and is now asked for " + std::to_string(size) +
               " (a bug in the sim's front end)").c_str());
    return r.data;
  }
  const uint64_t a = std::min<uint64_t>(std::max<uint64_t>(align, 16), kArenaAlign);
  const uint64_t offset = (arena_used_ + a - 1) / a * a;
  if (offset + size > MSIM_MAX_THREADGROUP_MEMORY) {
    const uint64_t dynamic = plan_->dynamic_threadgroup_bytes;
    fail(t, ("threadgroup memory exceeds the limit of " + std::to_string(MSIM_MAX_THREADGROUP_MEMORY) +
             " bytes per threadgroup: the kernel's threadgroup variables need at least " +
             std::to_string(offset + size - dynamic) + " bytes" +
             (dynamic ? " on top of the " + std::to_string(dynamic) +
                            " bytes of [[threadgroup(i)]] memory passed with threadgroup_memory="
                      : std::string()) +
             "; make the tiles smaller").c_str());
  }
  if (static_regions_.size() == kMaxThreadgroupVariables)
    fail(t, ("the kernel declares more than " + std::to_string(kMaxThreadgroupVariables) +
             " threadgroup variables, more than the sim supports").c_str());
  unsigned char* p = arena_ + offset;
  std::memset(p, plan_->poison, size);
  static_regions_.push_back(msim_region{p, size, MSIM_ARG_THREADGROUP, 1});
  if (slot >= slot_region_.size()) slot_region_.resize(size_t(slot) + 1, -1);
  slot_region_[slot] = int32_t(static_regions_.size() - 1);
  used_slots_.push_back(slot);
  arena_used_ = offset + size;
  static_bytes_ = arena_used_ - plan_->dynamic_threadgroup_bytes;
  return p;
}

const msim_region* GroupRunner::find_region(const msim_thread*, const void* p, uint64_t size) const {
  const auto q = reinterpret_cast<uintptr_t>(p);
  auto contains = [&](const msim_region& r) {
    if (r.kind == MSIM_ARG_UNUSED) return false;
    const auto b = reinterpret_cast<uintptr_t>(r.data);
    return q >= b && q - b <= r.size && size <= r.size - (q - b);
  };
  const msim_launch& launch = plan_->abi;
  for (uint32_t i = 0; i < launch.nargs; ++i)
    if (contains(launch.args[i])) return &launch.args[i];
  for (const msim_region& r : threadgroup_args_)
    if (contains(r)) return &r;
  for (const msim_region& r : static_regions_)
    if (contains(r)) return &r;
  return nullptr;
}

// ---- scheduler events -------------------------------------------------------------------------

void GroupRunner::on_exit(uint32_t i) {
  if (done_++ == 0) first_done_ = i;
  SimdGroup& sg = simdgroups_[i / kSimd];
  --sg.runnable;
  if (at_barrier_ > 0) {
    const Slot& b = slots_[barrier_first_];
    group_error("thread " + triple(threads_[i].thread_position_in_threadgroup) +
                " returned while other threads of its threadgroup wait at the threadgroup_barrier "
                "at " + at_site(b.line, b.column) +
                ". Every thread of a threadgroup must reach every barrier; one that returns early "
                "(say, a bounds check before the barrier) leaves the others waiting, which the GPU "
                "does not define. Keep all threads running through the barrier and guard only "
                "their memory accesses.");
    return;
  }
  if (sg.runnable == 0 && sg.waiting) resolve_simdgroup(i / kSimd);
}

void GroupRunner::on_barrier(uint32_t i) {
  const Slot& s = slots_[i];
  SimdGroup& sg = simdgroups_[i / kSimd];
  --sg.runnable;
  if (done_ > 0) {
    group_error("thread " + triple(threads_[i].thread_position_in_threadgroup) +
                " reached the threadgroup_barrier at " + at_site(s.line, s.column) + " after thread " +
                triple(threads_[first_done_].thread_position_in_threadgroup) +
                " had returned. Every thread of a threadgroup must reach every barrier; one that "
                "returns early (say, a bounds check before the barrier) leaves the others "
                "waiting, which the GPU does not define. Keep all threads running through the "
                "barrier and guard only their memory accesses.");
    return;
  }
  if (at_barrier_ == 0) {
    barrier_first_ = i;
  } else {
    const Slot& b = slots_[barrier_first_];
    if (s.line != b.line || s.column != b.column) {
      group_error("threads wait at different barriers: thread " +
                  triple(threads_[barrier_first_].thread_position_in_threadgroup) +
                  " at the threadgroup_barrier at " + at_site(b.line, b.column) + ", thread " +
                  triple(threads_[i].thread_position_in_threadgroup) + " at the one at " +
                  at_site(s.line, s.column) +
                  ". Every thread of a threadgroup must reach the same barrier; a barrier inside "
                  "a branch that not all threads take is undefined on the GPU.");
      return;
    }
  }
  barrier_arrivals_[at_barrier_] = uint16_t(i);
  if (++at_barrier_ == n_) {
    release_barrier();
    return;
  }
  if (sg.runnable == 0 && sg.waiting) resolve_simdgroup(i / kSimd);
}

// The threads resume in the reverse of the order they arrived in: the most recently parked
// fiber's stack is the one most likely still in cache. Since the two passes of the race check
// start in opposite orders, they still run every phase between barriers in opposite orders.
void GroupRunner::release_barrier() {
  const uint32_t nsg = (n_ + kSimd - 1) / kSimd;
  for (uint32_t sg = 0; sg < nsg; ++sg) simdgroups_[sg].runnable = simdgroups_[sg].lanes;
  for (uint32_t k = at_barrier_; k-- > 0;) {
    const uint32_t i = barrier_arrivals_[k];
    slots_[i].state = State::Ready;
    ready_.push_back(i);
  }
  at_barrier_ = 0;
}

void GroupRunner::on_simd(uint32_t i) {
  SimdGroup& sg = simdgroups_[i / kSimd];
  --sg.runnable;
  sg.waiting |= 1u << (i % kSimd);
  if (sg.runnable == 0) resolve_simdgroup(i / kSimd);
}

void GroupRunner::resolve_simdgroup(uint32_t sg) {
  SimdGroup& group = simdgroups_[sg];
  const uint32_t base = sg * kSimd;
  auto before = [](const msim_simd_op* a, const msim_simd_op* b) {
    if (a->line != b->line) return a->line < b->line;
    if (a->column != b->column) return a->column < b->column;
    return reinterpret_cast<uintptr_t>(a->resolve) < reinterpret_cast<uintptr_t>(b->resolve);
  };

  // The lanes at the earliest call site any lane waits at (usually all of them at one site).
  // lanes_ is all null between calls: only the entries set here are cleared again.
  msim_simd_op** lanes = lanes_;
  const msim_simd_op* site = nullptr;
  uint32_t present = 0;
  for (uint32_t waiting = group.waiting; waiting; waiting &= waiting - 1) {
    const uint32_t l = uint32_t(__builtin_ctz(waiting));
    msim_simd_op* op = slots_[base + l].op;
    if (site && before(site, op)) continue;
    if (!site || before(op, site)) {  // an earlier site: forget the lanes collected so far
      for (uint32_t p = present; p; p &= p - 1) lanes[__builtin_ctz(p)] = nullptr;
      present = 0;
      site = op;
    }
    lanes[l] = op;
    present |= 1u << l;
  }

  const uint32_t all = group.lanes == kSimd ? ~0u : (1u << group.lanes) - 1;
  if (site->rule == MSIM_SIMD_ALL && present != all) {
    for (uint32_t p = present; p; p &= p - 1) lanes[__builtin_ctz(p)] = nullptr;
    bool reached[kSimd] = {};
    for (uint32_t l = 0; l < group.lanes; ++l) reached[l] = present >> l & 1;
    const uint32_t absent = uint32_t(__builtin_ctz(~present));
    group_error(std::string(site->name) + " at " + at_site(site->line, site->column) +
                " was called in divergent code: every thread of a SIMD-group must call it "
                "together (MSL requires uniform control flow for simdgroup_barrier and "
                "simdgroup_matrix operations), but in SIMD-group " + std::to_string(sg) +
                " only lanes " + lane_list(reached, group.lanes) + " reached it; lane " +
                std::to_string(absent) + " " + describe_lane(base + absent) + ".");
    return;
  }
  const char* message = site->resolve(lanes, group.lanes);
  for (uint32_t p = present; p; p &= p - 1) lanes[__builtin_ctz(p)] = nullptr;
  if (message) {
    group_error("SIMD-group " + std::to_string(sg) + ": " + message);
    return;
  }

  group.waiting &= ~present;
  group.runnable += uint32_t(__builtin_popcount(present));
  // The resolved lanes run next, in thread order, ahead of everything already queued.
  if (plan_->order == ThreadOrder::Forward) {
    for (uint32_t p = present; p; p &= ~(1u << (31 - __builtin_clz(p)))) {
      const uint32_t l = uint32_t(31 - __builtin_clz(p));  // highest first: lowest ends in front
      slots_[base + l].state = State::Ready;
      ready_.push_front(base + l);
    }
  } else {
    for (uint32_t p = present; p; p &= p - 1) {
      const uint32_t l = uint32_t(__builtin_ctz(p));
      slots_[base + l].state = State::Ready;
      ready_.push_front(base + l);
    }
  }
}

std::string GroupRunner::describe_lane(uint32_t i) const {
  const Slot& s = slots_[i];
  switch (s.state) {
    case State::Done: return "had returned";
    case State::AtBarrier: return "waits at the threadgroup_barrier at " + at_site(s.line, s.column);
    case State::AtSimd:
      return std::string("waits at ") + s.op->name + " at " + at_site(s.op->line, s.op->column);
    default: return "was still running";
  }
}

// ---- failures -----------------------------------------------------------------------------------

void GroupRunner::group_error(std::string message) {
  if (failed_) return;
  failed_ = true;
  thread_failed_ = false;
  error_ = std::move(message);
}

void GroupRunner::thread_error(const msim_thread& t, std::string message) {
  if (failed_) return;
  failed_ = true;
  thread_failed_ = true;
  error_thread_ = t;
  error_ = std::move(message);
}

std::string GroupRunner::format_failure() const {
  std::string m = "kernel '" + plan_->kernel_name + "', threadgroup " + triple(group_pos_);
  if (thread_failed_)
    m += ", thread " + triple(error_thread_.thread_position_in_threadgroup) +
         " (thread_position_in_grid " + triple(error_thread_.thread_position_in_grid) + ")";
  return m + ": " + error_;
}

namespace {

// Where in the kernel library (or libc) a faulting instruction lies, for the message.
std::string code_location(uintptr_t pc) {
  Dl_info info{};
  if (!pc || !dladdr(reinterpret_cast<void*>(pc), &info) || !info.dli_fname) return {};
  std::string where;
  if (info.dli_sname) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    where = status == 0 && demangled ? demangled : info.dli_sname;
    std::free(demangled);
    char offset[32];
    std::snprintf(offset, sizeof offset, "+0x%zx", size_t(pc - reinterpret_cast<uintptr_t>(info.dli_saddr)));
    where += offset;
    where += " in ";
  }
  const char* file = std::strrchr(info.dli_fname, '/');
  where += file ? file + 1 : info.dli_fname;
  return " (in " + where + ")";
}

}  // namespace

std::string GroupRunner::fault_message() const {
  char address[32];
  std::snprintf(address, sizeof address, "0x%zx", size_t(fault_.address));
  const std::string where = code_location(fault_.pc);
  switch (fault_.signal) {
    case SIGSEGV:
    case SIGBUS:
      if (fault_.stack_overflow)
        return "stack overflow: the thread used more than the " + std::to_string(stacks_.stack_size() / 1024) +
               " KiB of stack the sim gives each GPU thread (large thread-private arrays or deep "
               "call chains; metalrt._C.sim_set_options(stack_kib=...) gives more)" + where;
      return std::string(fault_.signal == SIGSEGV ? "invalid memory access (SIGSEGV)" : "bus error (SIGBUS)") +
             " at address " + address +
             ": kernel code used a pointer that points into no bound buffer or threadgroup memory "
             "(for example arithmetic on a thread-space pointer, or a pointer made from an integer)" +
             where;
    case SIGFPE:
      if (fault_.code == FPE_INTDIV)
        return "integer division by zero (SIGFPE): x / 0 and x % 0 are undefined in MSL; "
               "on this CPU they trap (so does INT_MIN / -1)" + where;
      if (fault_.code == FPE_INTOVF)
        return "integer overflow in a division (SIGFPE: INT_MIN / -1)" + where;
      return "arithmetic fault (SIGFPE, code " + std::to_string(fault_.code) + ")" + where;
    case SIGILL:
    case SIGTRAP:
      return std::string("trap in kernel code (") + (fault_.signal == SIGILL ? "SIGILL" : "SIGTRAP") +
             "): most likely an index outside a fixed-size array (a thread or threadgroup array; "
             "the sim checks their bounds), or a function that ends without returning its value" +
             where;
    default:
      return "signal " + std::to_string(fault_.signal) + " in kernel code" + where;
  }
}

// ---- faults --------------------------------------------------------------------------------------

namespace {

// The interrupted context's program counter and stack pointer, and a way to redirect it to
// fn(arg) on a new stack. Only the platforms below are supported; elsewhere faults in kernel
// code are left to the previous handler.
struct ContextAccess {
  static bool supported() {
#if (defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))) || \
    (defined(__APPLE__) && (defined(__x86_64__) || defined(__aarch64__)))
    return true;
#else
    return false;
#endif
  }

  static void read(void* ucontext, uintptr_t* pc, uintptr_t* sp) {
    auto* uc = static_cast<ucontext_t*>(ucontext);
    (void)uc;
#if defined(__linux__) && defined(__x86_64__)
    *pc = uintptr_t(uc->uc_mcontext.gregs[REG_RIP]);
    *sp = uintptr_t(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__linux__) && defined(__aarch64__)
    *pc = uintptr_t(uc->uc_mcontext.pc);
    *sp = uintptr_t(uc->uc_mcontext.sp);
#elif defined(__APPLE__) && defined(__x86_64__)
    *pc = uintptr_t(uc->uc_mcontext->__ss.__rip);
    *sp = uintptr_t(uc->uc_mcontext->__ss.__rsp);
#elif defined(__APPLE__) && defined(__aarch64__)
    *pc = uintptr_t(__darwin_arm_thread_state64_get_pc(uc->uc_mcontext->__ss));
    *sp = uintptr_t(__darwin_arm_thread_state64_get_sp(uc->uc_mcontext->__ss));
#else
    *pc = *sp = 0;
#endif
  }

  // Makes the context call fn(arg) with its stack pointer at `top` (16-byte aligned).
  static void redirect(void* ucontext, void (*fn)(void*), void* arg, uintptr_t top) {
    auto* uc = static_cast<ucontext_t*>(ucontext);
    (void)uc; (void)fn; (void)arg; (void)top;
#if defined(__linux__) && defined(__x86_64__)
    uc->uc_mcontext.gregs[REG_RIP] = greg_t(fn);
    uc->uc_mcontext.gregs[REG_RSP] = greg_t(top - 8);  // as if called: rsp % 16 == 8 on entry
    uc->uc_mcontext.gregs[REG_RDI] = greg_t(arg);
    uc->uc_mcontext.gregs[REG_RBP] = 0;
#elif defined(__linux__) && defined(__aarch64__)
    uc->uc_mcontext.pc = uintptr_t(fn);
    uc->uc_mcontext.sp = top;
    uc->uc_mcontext.regs[0] = uintptr_t(arg);
    uc->uc_mcontext.regs[29] = 0;
    uc->uc_mcontext.regs[30] = 0;
#elif defined(__APPLE__) && defined(__x86_64__)
    uc->uc_mcontext->__ss.__rip = uint64_t(fn);
    uc->uc_mcontext->__ss.__rsp = top - 8;
    uc->uc_mcontext->__ss.__rdi = uint64_t(arg);
    uc->uc_mcontext->__ss.__rbp = 0;
#elif defined(__APPLE__) && defined(__aarch64__)
    __darwin_arm_thread_state64_set_pc_fptr(uc->uc_mcontext->__ss, fn);
    __darwin_arm_thread_state64_set_sp(uc->uc_mcontext->__ss, top);
    uc->uc_mcontext->__ss.__x[0] = uint64_t(arg);
    __darwin_arm_thread_state64_set_fp(uc->uc_mcontext->__ss, 0);
    __darwin_arm_thread_state64_set_lr_fptr(uc->uc_mcontext->__ss, nullptr);
#endif
  }
};

}  // namespace

bool GroupRunner::redirect_fault(int signal, const void* siginfo, void* ucontext) {
  // A second fault before the first was handled is a fault in the executor's own landing code.
  if (!ContextAccess::supported() || fault_pending_ || !running_stack_) return false;
  const auto* info = static_cast<const siginfo_t*>(siginfo);
  uintptr_t pc = 0, sp = 0;
  ContextAccess::read(ucontext, &pc, &sp);
  const Stack& stack = *running_stack_;
  const auto guard = reinterpret_cast<uintptr_t>(stack.guard);
  const auto lo = reinterpret_cast<uintptr_t>(stack.lo);
  fault_.signal = signal;
  fault_.code = info->si_code;
  fault_.address = reinterpret_cast<uintptr_t>(info->si_addr);
  fault_.pc = pc;
  fault_.stack_overflow = (signal == SIGSEGV || signal == SIGBUS) &&
                          ((fault_.address >= guard && fault_.address < lo) || sp < lo);
  fault_pending_ = true;
  // Leave the kernel through fault_landing, on the top of the faulting fiber's own stack: the
  // fiber is abandoned, so its frames may be overwritten.
  const uintptr_t top = (lo + stack.size) & ~uintptr_t(15);
  ContextAccess::redirect(ucontext, reinterpret_cast<void (*)(void*)>(&GroupRunner::fault_landing), this, top);
  return true;
}

void GroupRunner::fault_landing(GroupRunner* self) {
  // Back in ordinary (not signal) context: messages may allocate.
  self->thread_error(*self->running_thread_, self->fault_message());
  self->yield_to_scheduler(self->running_);
  __builtin_unreachable();
}

}  // namespace metalrt::sim
