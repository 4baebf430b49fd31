"""What kernel code can do wrong at run time: fail() (the front end's bounds checks), a stray
pointer (SIGSEGV), an integer division by zero (SIGFPE), an array-bounds trap (SIGILL), a stack
overflow. Each is a LaunchError naming the cause, the kernel, the threadgroup and the thread,
never a crash; the process and the executor stay usable. Faults elsewhere are not ours to catch."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from metalrt.errors import LaunchError

CPP = r"""
#ifndef FLAGS
#define FLAGS 0
#endif
// Each kernel misbehaves in thread 37 only; with FLAGS = MSIM_USES_BARRIER the others are
// parked at a barrier (on their fibers) when it does.
static inline void sync(msim_thread* t) {
  if (FLAGS & MSIM_USES_BARRIER) threadgroup_barrier(mem_flags::mem_none);
  (void)t;
}

static void fails(msim_thread* t) {
  sync(t);
  if (gid(t) == 37) msim::failf("index %d is outside buffer 'x' (%d elements)", 99, 64);
}

static void null_write(msim_thread* t) {
  sync(t);
  if (gid(t) == 37) *(volatile int*)(uintptr_t)at<int>(t, 0, 0) = 1;  // at<int>(t, 0, 0) is 0
}

static void divides_by_zero(msim_thread* t) {
  sync(t);
  const volatile int d = int(gid(t)) - 37;
  at<int>(t, 1, gid(t)) = 1000 / d;
}

static void array_out_of_bounds(msim_thread* t) {
  sync(t);
  int local[8] = {};
  const uint i = gid(t) == 37 ? 8 + at<int>(t, 0, 0) : 0;
  local[i] = 1;  // -fsanitize=array-bounds traps here for thread 37
  at<int>(t, 1, gid(t)) = local[0];
}

__attribute__((noinline)) static int recurse(int depth, volatile int* previous) {
  volatile int frame[256];
  frame[0] = previous ? previous[0] + 1 : 0;
  if (depth == 0) return frame[0];
  return recurse(depth - 1, frame) + frame[depth % 256];
}

static void overflows(msim_thread* t) {
  sync(t);
  if (gid(t) == 37) at<int>(t, 1, 0) = recurse(100000, nullptr);
}

static void copy(msim_thread* t) { at<int>(t, 1, gid(t)) = at<int>(t, 0, gid(t)) + 1; }

HARNESS_LIBRARY(
    {"fails", fails, FLAGS, 2}, {"null_write", null_write, FLAGS, 2},
    {"divides_by_zero", divides_by_zero, FLAGS, 2}, {"array_out_of_bounds", array_out_of_bounds, FLAGS, 2},
    {"overflows", overflows, FLAGS, 2}, {"copy", copy, 0, 2})
"""

MSL = "".join(
    f"kernel void {name}(device const int* x [[buffer(0)]], device int* y [[buffer(1)]]) {{}}\n"
    for name in ["fails", "null_write", "divides_by_zero", "array_out_of_bounds", "overflows", "copy"]
)

CAUSES = {
    "fails": "index 99 is outside buffer 'x' (64 elements)",
    "null_write": "invalid memory access (SIGSEGV) at address 0x0",
    "divides_by_zero": "integer division by zero (SIGFPE)",
    "array_out_of_bounds": "trap in kernel code (SIGILL): most likely an index outside a fixed-size array",
    "overflows": "stack overflow: the thread used more than the 56 KiB of stack",
}


@pytest.fixture(scope="module", params=["plain", "fibers"])
def lib(request, kernels):
    flags = {"plain": "0", "fibers": "MSIM_USES_BARRIER"}[request.param]
    return kernels.load(CPP, MSL, defines={"FLAGS": flags})


def check_usable(lib):
    x = np.arange(1000, dtype=np.int32)
    y = np.zeros_like(x)
    lib.kernel("copy")(x, y, threads=1000)
    np.testing.assert_array_equal(y, x + 1)


@pytest.mark.parametrize("name", CAUSES)
def test_fault_becomes_launch_error(lib, name):
    x, y = np.zeros(64, np.int32), np.zeros(64, np.int32)
    with pytest.raises(LaunchError) as e:
        lib.kernel(name)(x, y, threads=64, group_size=32)
    message = str(e.value)
    assert CAUSES[name] in message
    assert f"kernel '{name}', threadgroup (1, 0, 0), thread (5, 0, 0) (thread_position_in_grid (37, 0, 0))" in message
    check_usable(lib)


def test_many_faults_in_a_row(lib):
    x, y = np.zeros(64, np.int32), np.zeros(64, np.int32)
    for _ in range(50):
        for name in CAUSES:
            with pytest.raises(LaunchError):
                lib.kernel(name)(x, y, threads=64, group_size=32)
    check_usable(lib)


def test_launches_from_several_python_threads(lib):
    errors, results = [], []

    def work(i):
        x, y = np.arange(5000, dtype=np.int32) * i, np.zeros(5000, np.int32)
        try:
            for _ in range(20):
                lib.kernel("copy")(x, y, threads=5000, group_size=100)
            with pytest.raises(LaunchError):
                lib.kernel("divides_by_zero")(np.zeros(64, np.int32), np.zeros(64, np.int32), threads=64)
            results.append(np.array_equal(y, x + 1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [True] * 4


def test_stack_size_option(lib, sim_options):
    x, y = np.zeros(64, np.int32), np.zeros(64, np.int32)
    sim_options(stack_kib=128)
    with pytest.raises(LaunchError, match="more than the 128 KiB of stack"):
        lib.kernel("overflows")(x, y, threads=64, group_size=32)
    with pytest.raises(ValueError, match="stack_kib=4: expected 16 to 1024"):
        sim_options(stack_kib=4)


FOREIGN_FAULT = """
import ctypes, numpy as np
from metalrt import _C
lib = _C.sim_load({so!r}, _C.parse_msl({msl!r}))
x = np.arange(64, dtype=np.int32); y = np.zeros_like(x)
lib.kernel("copy")(x, y, threads=64)
print("launched", flush=True)
ctypes.string_at(0)  # a fault in Python's own thread: not kernel code
print("survived", flush=True)
"""


def test_faults_outside_kernel_code_keep_their_default_action(kernels):
    so = kernels.compile(CPP)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(FOREIGN_FAULT.format(so=str(so), msl=MSL))],
                            capture_output=True, text=True, timeout=120)
    assert "launched" in result.stdout and "survived" not in result.stdout
    assert result.returncode == -11, result.stderr


AFTER_FORK = """
import os, numpy as np
from metalrt import _C
lib = _C.sim_load({so!r}, _C.parse_msl({msl!r}))
x = np.arange(640, dtype=np.int32); y = np.zeros_like(x)
lib.kernel("copy")(x, y, threads=640, group_size=64)   # the parent's workers exist now
pid = os.fork()
if pid == 0:
    y[:] = 0
    lib.kernel("copy")(x, y, threads=640, group_size=64)
    os._exit(0 if (y == x + 1).all() else 1)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def test_launch_in_a_forked_child(kernels):
    so = kernels.compile(CPP)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(AFTER_FORK.format(so=str(so), msl=MSL))],
                            capture_output=True, text=True, timeout=120)
    assert "child 0" in result.stdout, result.stdout + result.stderr
