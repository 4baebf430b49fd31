// Synchronous signals raised by kernel code (SIGSEGV and SIGBUS from a stray pointer or a
// fiber stack overflow, SIGFPE from an integer division by zero, SIGILL and SIGTRAP from the
// array bounds traps the front end compiles in) become launch errors instead of killing the
// Python process. The handlers run on an alternate signal stack and act only on executor
// worker threads while they run kernel code; every other fault goes to the handler that was
// installed before (Python's faulthandler, say), or to the default action.
#pragma once

namespace metalrt::sim {

class GroupRunner;

// Installs the handlers once per process; later calls do nothing.
void install_fault_handlers();

// Called on a worker thread when it starts and before it ends: gives the thread its alternate
// signal stack and routes its faults in kernel code to `runner`.
void register_worker_thread(GroupRunner* runner);
void unregister_worker_thread(GroupRunner* runner);

// In a child process after fork(): the parent's worker threads do not exist here.
void forget_worker_threads();

}  // namespace metalrt::sim
