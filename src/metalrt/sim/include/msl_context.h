// The kernel side of the executor ABI, shared by every shim header: the current GPU thread and
// the way out of a launch. Each compiled kernel library gets its own copy of the thread-local
// below (an inline variable: one definition per shared object); the executor sets it through
// the library's exported msim_set_current() before it runs or resumes a thread.
#pragma once
#include "metalrt_sim_abi.h"

namespace msim {

inline thread_local msim_thread* tls_current = nullptr;

inline msim_thread* self() { return tls_current; }

// Ends the launch with a LaunchError carrying `message`. The executor copies the message.
[[noreturn]] inline void fail(const char* message) {
  msim_thread* t = tls_current;
  t->launch->rt->fail(t, message);
  __builtin_unreachable();
}

// fail() with a formatted message (printf conventions), for messages that carry indices.
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void failf(const char* format, ...) {
  char buffer[512];
  __builtin_va_list args;
  __builtin_va_start(args, format);
  __builtin_vsnprintf(buffer, sizeof buffer, format, args);
  __builtin_va_end(args);
  fail(buffer);
}

}  // namespace msim
