// Fibers: a stack and a saved register set, switched in user space. The executor runs each GPU
// thread of a synchronising threadgroup on its own fiber, all on one OS thread, and switches
// between them at every barrier and SIMD-group rendezvous; a fast switch is what makes a
// barrier-heavy kernel affordable. x86-64 (System V) and aarch64 use a switch written in
// assembly (fiber.cpp) that saves only the callee-saved registers; other platforms fall back
// to ucontext, which is correct but makes a system call per switch.
//
// The floating-point control state (MXCSR, FPCR) is not switched: kernel code never changes
// it, so every fiber shares the worker thread's.
#pragma once
#include <cstddef>

#ifndef METALRT_SIM_ASM_FIBERS  // predefine as 0 to test the ucontext fallback
#if defined(__x86_64__) || defined(__aarch64__)
#define METALRT_SIM_ASM_FIBERS 1
#else
#define METALRT_SIM_ASM_FIBERS 0
#endif
#endif
#if !METALRT_SIM_ASM_FIBERS
#include <ucontext.h>
#endif

#if METALRT_SIM_ASM_FIBERS
extern "C" __attribute__((visibility("hidden"))) void metalrt_sim_fiber_switch(void** save_sp,
                                                                     void* resume_sp);
#endif

namespace metalrt::sim {

// The entry function of a fiber. It must never return: it ends by switching away for good.
using FiberMain = void (*)(void* arg);

struct FiberContext {
#if METALRT_SIM_ASM_FIBERS
  void* sp = nullptr;  // the saved stack pointer; the registers lie on the stack below it
#else
  ucontext_t uc;
#endif
};

// Prepares `ctx` so that the first switch into it runs main(arg) on the stack
// [stack_lo, stack_lo + size).
void make_fiber(FiberContext* ctx, void* stack_lo, size_t size, FiberMain main, void* arg);

// Saves the running context into *from and resumes *to. Returns when something switches back
// into *from.
inline void switch_fiber(FiberContext* from, FiberContext* to) {
#if METALRT_SIM_ASM_FIBERS
  metalrt_sim_fiber_switch(&from->sp, to->sp);
#else
  swapcontext(&from->uc, &to->uc);
#endif
}

}  // namespace metalrt::sim
