/* The ABI between the sim's executor (csrc/sim, inside metalrt._C) and a compiled kernel
 * library (a shared object the sim front end generates from MSL and clang builds).
 *
 * Plain C so both sides agree byte for byte. A kernel library exports:
 *   msim_library_info()   its ABI version and kernel table
 *   msim_set_current(t)   sets the thread-local "current thread" the shim functions read
 * Kernel code calls back into the executor only through the msim_runtime function table
 * (the library cannot link against _C, which Python loads with RTLD_LOCAL).
 *
 * Bump MSIM_ABI_VERSION on any change here; the executor refuses a library built for another
 * version, and the version enters the sim's disk-cache key.
 */
#ifndef METALRT_SIM_ABI_H
#define METALRT_SIM_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSIM_ABI_VERSION 1u
#define MSIM_SIMD_WIDTH 32u
#define MSIM_MAX_THREADS_PER_GROUP 1024u
#define MSIM_MAX_THREADGROUP_MEMORY 32768u

/* ---- bound arguments ---------------------------------------------------------------- */

enum msim_arg_kind {
  MSIM_ARG_UNUSED = 0,      /* builtin parameters: nothing bound */
  MSIM_ARG_BUFFER = 1,      /* device/constant pointer: data..data+size */
  MSIM_ARG_BYTES = 2,       /* constant T& / small constant data passed by value (setBytes) */
  MSIM_ARG_THREADGROUP = 3, /* [[threadgroup(i)]]: per-group memory, data set per group */
};

typedef struct msim_region {
  unsigned char* data;
  uint64_t size;      /* bytes */
  uint32_t kind;      /* msim_arg_kind */
  uint32_t writable;  /* 0 for constant-space buffers and read-only arrays */
} msim_region;

/* ---- SIMD-group rendezvous ------------------------------------------------------------ */

/* How the executor must treat the set of lanes that reach one call site together. */
enum msim_simd_rule {
  MSIM_SIMD_ACTIVE = 0,  /* operates on the active lanes (reductions, scans, shuffles, ballot) */
  MSIM_SIMD_ALL = 1,     /* every lane of the SIMD-group must take part (simdgroup_barrier,
                            simdgroup_matrix operations); otherwise a LaunchError */
};

typedef struct msim_simd_op msim_simd_op;

/* Called once per rendezvous by the executor, on the executor's stack, with the ops of the
 * active lanes: lanes[i] is the op of lane i, or NULL when lane i is inactive. It writes each
 * active lane's `out`. Returns NULL, or a message (static storage or the op's `error` buffer)
 * describing undefined behaviour it detected, e.g. a non-uniform lane index for
 * simd_broadcast, or a shuffle reading an inactive lane; the executor turns it into a
 * LaunchError. */
typedef const char* (*msim_simd_resolve_fn)(msim_simd_op* const* lanes, uint32_t nlanes);

struct msim_simd_op {
  const char* name;              /* "simd_sum", for messages */
  uint32_t line, column;         /* call site in the user's source: lanes meet by call site */
  uint32_t rule;                 /* msim_simd_rule */
  uint32_t lane;                 /* filled by the shim: this lane's index */
  msim_simd_resolve_fn resolve;  /* same function for every lane at one call site */
  int64_t arg;                   /* lane index, delta, mask, ... */
  unsigned char in[64] __attribute__((aligned(16)));   /* this lane's operand (up to long4 / 8 halves x 8) */
  unsigned char out[64] __attribute__((aligned(16))); /* this lane's result */
  void* ptr;                     /* operand for memory ops (simdgroup_load/store) */
  char error[192];
};

/* ---- the thread context -------------------------------------------------------------- */

typedef struct msim_thread msim_thread;
typedef struct msim_launch msim_launch;

typedef struct msim_runtime {
  /* Aborts the launch with a LaunchError carrying `message`; never returns. */
  void (*fail)(msim_thread* t, const char* message);
  /* threadgroup_barrier: every thread of the group must reach the same barrier (same call
   * site); the executor reports a barrier that some thread skips or a thread that exits. */
  void (*threadgroup_barrier)(msim_thread* t, uint32_t mem_flags, uint32_t line, uint32_t column);
  /* SIMD-group rendezvous: blocks until the lanes of this SIMD-group that reach the same call
   * site are all there (lanes that exited or wait elsewhere are inactive), runs op->resolve
   * once over them, then resumes. */
  void (*simd_sync)(msim_thread* t, msim_simd_op* op);
  /* Storage for a `threadgroup` variable declared in the kernel body: the same address for
   * every thread of the group, allocated on first use in each group, filled with a poison
   * pattern (reading it before writing it is a bug the sim makes visible). `slot` numbers the
   * declarations of one source. Fails the launch above MSIM_MAX_THREADGROUP_MEMORY in total. */
  void* (*threadgroup_alloc)(msim_thread* t, uint32_t slot, uint64_t size, uint64_t align);
  /* The bound buffer or threadgroup region that contains [p, p + size), or NULL: lets a
   * checked pointer built from a raw address (`&buf[i]`) learn its bounds. */
  const msim_region* (*find_region)(msim_thread* t, const void* p, uint64_t size);
} msim_runtime;

struct msim_launch {
  const msim_runtime* rt;
  const msim_region* args;   /* indexed by parameter position in the declaration (builtins
                                included, their slots MSIM_ARG_UNUSED) */
  uint32_t nargs;
  uint32_t threads_per_grid[3];
  uint32_t threadgroups_per_grid[3];
  uint32_t dispatch_threads_per_threadgroup[3];  /* the nominal group size */
  const int64_t* constants;  /* unused by generated code (function constants are compiled in) */
};

/* One per GPU thread. The executor fills every field before the thread runs; the entry
 * trampoline converts what the kernel declares (uint, ushort2, uint3, ...) from these. */
struct msim_thread {
  const msim_launch* launch;
  const msim_region* threadgroup_args;  /* this group's [[threadgroup(i)]] memory, by position
                                           like launch->args (other slots UNUSED) */
  uint32_t thread_position_in_grid[3];
  uint32_t thread_position_in_threadgroup[3];
  uint32_t threadgroup_position_in_grid[3];
  uint32_t threads_per_threadgroup[3];   /* the actual size of this group (partial at edges) */
  uint32_t thread_index_in_threadgroup;
  uint32_t thread_index_in_simdgroup;
  uint32_t simdgroup_index_in_threadgroup;
  uint32_t threads_per_simdgroup;        /* the SIMD width, 32 */
  uint32_t simdgroups_per_threadgroup;
  uint32_t thread_index_in_quadgroup;
  uint32_t quadgroup_index_in_threadgroup;
  uint32_t quadgroups_per_threadgroup;
  uint32_t lanes_in_simdgroup;           /* lanes that exist in this SIMD-group (the last one of
                                            a group whose size is not a multiple of 32 has fewer) */
  void* executor;                        /* private to the executor */
};

/* ---- what a compiled kernel library exports -------------------------------------------- */

enum msim_kernel_flags {
  MSIM_USES_BARRIER = 1u << 0,      /* threadgroup_barrier */
  MSIM_USES_SIMD = 1u << 1,         /* any SIMD-group / quad-group function or simdgroup_matrix */
  MSIM_USES_THREADGROUP = 1u << 2,  /* threadgroup variables or [[threadgroup(i)]] parameters */
  MSIM_USES_ATOMICS = 1u << 3,      /* atomic_* on any memory */
  MSIM_USES_DEVICE_ATOMICS = 1u << 4,
};
/* Kernels with neither BARRIER nor SIMD run as a plain loop over the threads of a group;
 * the others run each thread on its own fiber. */

typedef void (*msim_entry_fn)(msim_thread* t);

typedef struct msim_kernel_desc {
  const char* host_name;   /* lib.NAME */
  msim_entry_fn entry;     /* runs one thread of the kernel to completion */
  uint32_t flags;          /* msim_kernel_flags */
  uint32_t nparams;        /* parameters in the declaration, builtins included */
} msim_kernel_desc;

typedef struct msim_library_info {
  uint32_t abi_version;    /* MSIM_ABI_VERSION the library was built against */
  uint32_t nkernels;
  const msim_kernel_desc* kernels;
} msim_library_info;

/* Exported (default visibility) by every kernel library: */
const msim_library_info* msim_library_info_get(void);
void msim_set_current(msim_thread* t);

#ifdef __cplusplus
}
#endif
#endif /* METALRT_SIM_ABI_H */
