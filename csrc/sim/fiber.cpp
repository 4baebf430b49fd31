// The context switch behind fiber.h. The assembly lives in this file as file-scope asm so the
// build needs no assembler language of its own.
//
// metalrt_sim_fiber_switch(save_sp, resume_sp) pushes the callee-saved registers, stores the
// stack pointer in *save_sp, loads resume_sp and pops the registers saved there. A new fiber's
// stack is prepared by make_fiber() to look like a suspended switch whose return address is
// metalrt_sim_fiber_start, which calls main(arg) with the registers make_fiber() planted.
#include "sim/fiber.h"

#include <cstdint>

#if defined(__APPLE__)
#define METALRT_SIM_SYMBOL(name) "_" #name
#define METALRT_SIM_FUNCTION(name) ".globl _" #name "\n.p2align 4\n_" #name ":\n"
#define METALRT_SIM_END(name) ""
#else
#define METALRT_SIM_SYMBOL(name) #name
#define METALRT_SIM_FUNCTION(name) \
  ".globl " #name "\n.hidden " #name "\n.type " #name ", %function\n.p2align 4\n" #name ":\n"
#define METALRT_SIM_END(name) ".size " #name ", .-" #name "\n"
#endif

#if METALRT_SIM_ASM_FIBERS && defined(__x86_64__)

// System V: rbx, rbp, r12-r15 are callee-saved. make_fiber() puts main in r13 and arg in r12.
__asm__(
    ".text\n"
    METALRT_SIM_FUNCTION(metalrt_sim_fiber_switch)
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    METALRT_SIM_END(metalrt_sim_fiber_switch)
    METALRT_SIM_FUNCTION(metalrt_sim_fiber_start)
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"
    METALRT_SIM_END(metalrt_sim_fiber_start));

#elif METALRT_SIM_ASM_FIBERS && defined(__aarch64__)

// AAPCS64: x19-x28, the frame pointer x29, the link register x30 and the low halves of v8-v15
// are callee-saved. make_fiber() puts arg in x19, main in x20 and the start stub in x30.
__asm__(
    ".text\n"
    METALRT_SIM_FUNCTION(metalrt_sim_fiber_switch)
    "  sub sp, sp, #160\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    "  mov x9, sp\n"
    "  str x9, [x0]\n"
    "  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #160\n"
    "  ret\n"
    METALRT_SIM_END(metalrt_sim_fiber_switch)
    METALRT_SIM_FUNCTION(metalrt_sim_fiber_start)
    "  mov x0, x19\n"
    "  blr x20\n"
    "  brk #0\n"
    METALRT_SIM_END(metalrt_sim_fiber_start));

#endif

namespace metalrt::sim {

#if METALRT_SIM_ASM_FIBERS

extern "C" __attribute__((visibility("hidden"))) void metalrt_sim_fiber_start();

void make_fiber(FiberContext* ctx, void* stack_lo, size_t size, FiberMain main, void* arg) {
  const uintptr_t top = (reinterpret_cast<uintptr_t>(stack_lo) + size) & ~uintptr_t(15);
  void** sp;
#if defined(__x86_64__)
  // Popped by the switch in order r15 r14 r13 r12 rbx rbp, then `ret` into the start stub. Two
  // padding words leave rsp 16-byte aligned when the stub's `call` runs, as the ABI requires.
  sp = reinterpret_cast<void**>(top - 9 * sizeof(void*));
  sp[0] = nullptr;                                              // r15
  sp[1] = nullptr;                                              // r14
  sp[2] = reinterpret_cast<void*>(main);                        // r13
  sp[3] = arg;                                                  // r12
  sp[4] = nullptr;                                              // rbx
  sp[5] = nullptr;                                              // rbp: ends frame-pointer walks
  sp[6] = reinterpret_cast<void*>(&metalrt_sim_fiber_start);    // return address
  sp[7] = sp[8] = nullptr;
#else
  // The 160-byte frame the aarch64 switch restores: x19..x30 then d8..d15.
  sp = reinterpret_cast<void**>(top - 160);
  for (int i = 0; i < 20; ++i) sp[i] = nullptr;
  sp[0] = arg;                                                  // x19
  sp[1] = reinterpret_cast<void*>(main);                        // x20
  sp[11] = reinterpret_cast<void*>(&metalrt_sim_fiber_start);   // x30
#endif
  ctx->sp = sp;
}

#else

namespace {
// makecontext passes int arguments only: the pointers travel in halves.
void start_ucontext(int main_hi, int main_lo, int arg_hi, int arg_lo) {
  auto join = [](int hi, int lo) {
    return (uintptr_t(uint32_t(hi)) << 32) | uintptr_t(uint32_t(lo));
  };
  auto main = reinterpret_cast<FiberMain>(join(main_hi, main_lo));
  main(reinterpret_cast<void*>(join(arg_hi, arg_lo)));
  __builtin_trap();  // a fiber's main never returns
}
}  // namespace

void make_fiber(FiberContext* ctx, void* stack_lo, size_t size, FiberMain main, void* arg) {
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack_lo;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = nullptr;
  const uint64_t m = reinterpret_cast<uintptr_t>(main), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&ctx->uc, reinterpret_cast<void (*)()>(&start_ucontext), 4, int(m >> 32),
              int(m & 0xffffffffu), int(a >> 32), int(a & 0xffffffffu));
}

#endif

}  // namespace metalrt::sim
