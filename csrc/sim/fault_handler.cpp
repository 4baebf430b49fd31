#include "sim/fault_handler.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <mutex>

#include "sim/group_runner.h"

namespace metalrt::sim {

namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
constexpr int kMaxWorkers = 512;
constexpr size_t kAltStackBytes = 64 * 1024;

// The runners of live worker threads. The handler scans it without locks (it may not take
// any); registration takes a free entry with a compare-and-swap.
std::atomic<GroupRunner*> g_workers[kMaxWorkers];
struct sigaction g_previous[NSIG];

thread_local void* t_alt_stack = nullptr;

void chain(int signal, siginfo_t* info, void* ucontext) {
  const struct sigaction& prev = g_previous[signal];
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(signal, info, ucontext);
    return;
  }
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(signal);
    return;
  }
  // The default action: restore it and let the fault happen again on return (a hardware fault
  // re-executes the instruction), or raise it again when the signal was sent by kill().
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signal, &dfl, nullptr);
  if (info->si_code <= 0) raise(signal);
}

void on_fault(int signal, siginfo_t* info, void* ucontext) {
  const pthread_t self = pthread_self();
  for (auto& slot : g_workers) {
    GroupRunner* runner = slot.load(std::memory_order_acquire);
    if (runner && pthread_equal(runner->owner(), self)) {
      if (runner->in_kernel() && runner->redirect_fault(signal, info, ucontext)) return;
      break;
    }
  }
  chain(signal, info, ucontext);
}

}  // namespace

void install_fault_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int signal : kSignals) {
      struct sigaction action = {};
      action.sa_sigaction = &on_fault;
      // SA_NODEFER: the landing code leaves through sigreturn anyway, but a fault in a chained
      // handler must not find its own signal blocked.
      action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
      sigemptyset(&action.sa_mask);
      sigaction(signal, &action, &g_previous[signal]);
    }
  });
}

void register_worker_thread(GroupRunner* runner) {
  runner->set_owner(pthread_self());
  void* stack = mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack != MAP_FAILED) {
    stack_t ss = {};
    ss.ss_sp = stack;
    ss.ss_size = kAltStackBytes;
    if (sigaltstack(&ss, nullptr) == 0)
      t_alt_stack = stack;
    else
      munmap(stack, kAltStackBytes);
  }
  for (auto& slot : g_workers) {
    GroupRunner* expected = nullptr;
    if (slot.compare_exchange_strong(expected, runner, std::memory_order_release)) return;
  }
  // More workers than entries: this one's kernel faults will not be caught. The executor
  // caps its worker count far below this.
}

void unregister_worker_thread(GroupRunner* runner) {
  for (auto& slot : g_workers) {
    GroupRunner* expected = runner;
    if (slot.compare_exchange_strong(expected, nullptr, std::memory_order_release)) break;
  }
  if (t_alt_stack) {
    stack_t ss = {};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(t_alt_stack, kAltStackBytes);
    t_alt_stack = nullptr;
  }
}

void forget_worker_threads() {
  for (auto& slot : g_workers) slot.store(nullptr, std::memory_order_relaxed);
}

}  // namespace metalrt::sim
