#include "sim/executor.h"

#include <pthread.h>
#include <signal.h>
#if defined(__linux__)
#include <sched.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>

#include "sim/fault_handler.h"
#include "sim/group_runner.h"

namespace metalrt::sim {

namespace {

constexpr uint32_t kMaxWorkers = 256;
constexpr uint32_t kMinStackKib = 16;
constexpr uint32_t kMaxStackKib = 1024;

Executor* g_executor = nullptr;

uint32_t available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

uint32_t parse_count(const char* text, const std::string& what, uint32_t lo, uint32_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (!*text || *end || errno || v < lo || v > hi)
    throw std::invalid_argument(what + "='" + text + "': expected a whole number from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
  return uint32_t(v);
}

}  // namespace

std::string race_check_name(RaceCheck r) {
  switch (r) {
    case RaceCheck::Off: return "0";
    case RaceCheck::On: return "1";
    default: return "auto";
  }
}

RaceCheck parse_race_check(const std::string& value, const std::string& what) {
  if (value == "auto") return RaceCheck::Auto;
  if (value == "0") return RaceCheck::Off;
  if (value == "1") return RaceCheck::On;
  throw std::invalid_argument(what + "='" + value +
                              "': expected 'auto' (check kernels that use threadgroup memory and "
                              "no atomics), '0' (never) or '1' (every launch)");
}

ExecutorOptions ExecutorOptions::from_environment() {
  ExecutorOptions o;
  if (const char* v = std::getenv("METALRT_SIM_WORKERS"))
    o.workers = parse_count(v, "METALRT_SIM_WORKERS", 1, kMaxWorkers);
  if (const char* v = std::getenv("METALRT_SIM_RACECHECK"))
    o.race_check = parse_race_check(v, "METALRT_SIM_RACECHECK");
  if (const char* v = std::getenv("METALRT_SIM_STACK_KIB"))
    o.stack_kib = parse_count(v, "METALRT_SIM_STACK_KIB", kMinStackKib, kMaxStackKib);
  return o;
}

void ExecutorOptions::validate() const {
  if (workers > kMaxWorkers)
    throw std::invalid_argument("sim workers=" + std::to_string(workers) + ": at most " +
                                std::to_string(kMaxWorkers) + " (0 means one per core)");
  if (stack_kib < kMinStackKib || stack_kib > kMaxStackKib)
    throw std::invalid_argument("sim stack_kib=" + std::to_string(stack_kib) + ": expected " +
                                std::to_string(kMinStackKib) + " to " + std::to_string(kMaxStackKib));
}

struct Executor::Worker {
  std::unique_ptr<GroupRunner> runner;
  std::thread thread;
  uint64_t start_epoch = 0;  // launches up to this one happened before the worker existed
  uint64_t static_bytes = 0;
};

Executor& Executor::instance() {
  static std::once_flag once;
  // A malformed environment variable throws here, and the next call tries again.
  std::call_once(once, [] {
    g_executor = new Executor(ExecutorOptions::from_environment());
    pthread_atfork(nullptr, nullptr, &Executor::on_fork_child);
  });
  return *g_executor;
}

// The child of a fork() has none of the parent's worker threads, and the parent's locks may
// have been held at the fork: start over with a fresh executor (the old one is abandoned).
void Executor::on_fork_child() {
  forget_worker_threads();
  g_executor = new Executor(g_executor->options_);
}

Executor::Executor(const ExecutorOptions& options) : options_(options) {}

ExecutorOptions Executor::options() const {
  std::lock_guard lock(options_mutex_);
  return options_;
}

void Executor::set_options(const ExecutorOptions& options) {
  options.validate();
  std::lock_guard lock(options_mutex_);
  options_ = options;
}

uint32_t Executor::worker_count() const {
  const uint32_t w = options().workers;
  return w ? w : std::min(available_cores(), kMaxWorkers);
}

void Executor::ensure_workers() {
  const ExecutorOptions o = options();
  const uint32_t want = worker_count();
  if (workers_.size() == want && workers_stack_kib_ == o.stack_kib) return;
  stop_workers();
  install_fault_handlers();
  // Workers take no asynchronous signals (SIGINT and the like go to Python's threads), only
  // the faults kernel code may raise.
  sigset_t blocked, previous;
  sigfillset(&blocked);
  for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigdelset(&blocked, s);
  pthread_sigmask(SIG_SETMASK, &blocked, &previous);
  try {
    for (uint32_t i = 0; i < want; ++i) {
      auto w = std::make_unique<Worker>();
      w->runner = std::make_unique<GroupRunner>(size_t(o.stack_kib) * 1024);
      w->start_epoch = epoch_;  // stable: only run() changes it, under launch_mutex_ like us
      Worker* raw = w.get();
      w->thread = std::thread([this, raw] { worker_main(raw); });
      workers_.push_back(std::move(w));
    }
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    stop_workers();
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  workers_stack_kib_ = o.stack_kib;
}

void Executor::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  workers_.clear();
  std::lock_guard lock(mutex_);
  stopping_ = false;
}

void Executor::worker_main(Worker* worker) {
  register_worker_thread(worker->runner.get());
  uint64_t seen = worker->start_epoch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || epoch_ != seen; });
    if (stopping_) break;
    seen = epoch_;
    const LaunchPlan* plan = plan_;
    lock.unlock();
    run_groups(worker, *plan);
    lock.lock();
    if (--busy_ == 0) done_.notify_all();
  }
  lock.unlock();
  unregister_worker_thread(worker->runner.get());
}

void Executor::run_groups(Worker* worker, const LaunchPlan& plan) {
  GroupFailure failure;
  worker->static_bytes = 0;
  while (!abort_.load(std::memory_order_relaxed)) {
    const uint64_t g = next_group_.fetch_add(1, std::memory_order_relaxed);
    if (g >= total_groups_) break;
    const bool ok = worker->runner->run(plan, g, &failure);
    worker->static_bytes = std::max(worker->static_bytes, worker->runner->static_threadgroup_bytes());
    if (!ok) {
      std::lock_guard lock(failure_mutex_);
      if (!failure_ || failure.group < failure_->group) failure_ = failure;
      abort_.store(true, std::memory_order_relaxed);
    }
  }
}

RunResult Executor::run(const LaunchPlan& plan) {
  std::lock_guard launch(launch_mutex_);
  ensure_workers();
  {
    std::unique_lock lock(mutex_);
    plan_ = &plan;
    total_groups_ = plan.group_count();
    next_group_.store(0, std::memory_order_relaxed);
    abort_.store(false, std::memory_order_relaxed);
    failure_.reset();
    busy_ = uint32_t(workers_.size());
    ++epoch_;
    wake_.notify_all();
    done_.wait(lock, [&] { return busy_ == 0; });
    plan_ = nullptr;
  }
  RunResult result;
  result.failure = std::move(failure_);
  failure_.reset();
  for (auto& w : workers_) result.static_threadgroup_bytes = std::max(result.static_threadgroup_bytes, w->static_bytes);
  return result;
}

}  // namespace metalrt::sim
