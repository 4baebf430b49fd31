"""The race check: launches of kernels that use threadgroup memory run a second time with each
threadgroup's threads in reverse order (and another fill pattern in fresh threadgroup memory);
a difference in what they wrote is a LaunchError that names the buffer, the element and both
values. Correct kernels pass; kernels with atomics are left out unless asked for."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from metalrt.errors import LaunchError

CPP = r"""
// Each thread reads the value its right neighbour stored: without a barrier between the write
// and the read, the result depends on which thread runs first.
template <bool Barrier>
static void shift(msim_thread* t) {
  float* tile = threadgroup_array<float>(t, 0, 1024);
  const uint i = lid(t), n = t->threads_per_threadgroup[0];
  tile[i] = at<float>(t, 0, gid(t));
  if (Barrier) threadgroup_barrier(mem_flags::mem_threadgroup);
  at<float>(t, 1, gid(t)) = tile[(i + 1) % n];
}

// Reads threadgroup memory no thread wrote.
static void uninitialised(msim_thread* t) {
  float* tile = threadgroup_array<float>(t, 0, 64);
  at<float>(t, 1, gid(t)) = tile[lid(t) % 64] + 1.0f;
}

// Forward order, thread i finds what thread i-1 wrote; in reverse order it finds the fill
// pattern, and uses it as an index.
static void index_from_neighbour(msim_thread* t) {
  uint* tile = threadgroup_array<uint>(t, 0, 1024);
  const uint i = lid(t);
  tile[i] = i;
  const uint j = i > 0 ? tile[i - 1] : 0;
  at<float>(t, 1, j) = 1.0f;
}

// out += in, through threadgroup memory with a barrier: correct, and only right if the second
// run starts from the original contents of `out`.
static void accumulate(msim_thread* t) {
  float* tile = threadgroup_param<float>(t, 2);
  tile[lid(t)] = at<float>(t, 0, gid(t));
  threadgroup_barrier(mem_flags::mem_threadgroup);
  at<float>(t, 1, gid(t)) += tile[lid(t)];
}

HARNESS_LIBRARY(
    {"shift_racy", shift<false>, MSIM_USES_THREADGROUP, 2},
    {"shift", shift<true>, MSIM_USES_THREADGROUP | MSIM_USES_BARRIER, 2},
    {"shift_racy_atomics", shift<false>, MSIM_USES_THREADGROUP | MSIM_USES_ATOMICS, 2},
    {"uninitialised", uninitialised, MSIM_USES_THREADGROUP, 2},
    {"index_from_neighbour", index_from_neighbour, MSIM_USES_THREADGROUP, 2},
    {"accumulate", accumulate, MSIM_USES_THREADGROUP | MSIM_USES_BARRIER, 3})
"""

MSL = "".join(
    f"kernel void {name}(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {{}}\n"
    for name in ["shift_racy", "shift", "shift_racy_atomics", "uninitialised", "index_from_neighbour"]
) + ("kernel void accumulate(device const float* in [[buffer(0)]], device float* out [[buffer(1)]], "
     "threadgroup float* tile [[threadgroup(0)]]) {}\n")


@pytest.fixture(scope="module")
def lib(kernels):
    return kernels.load(CPP, MSL)


def data(n=256):
    return np.arange(n, dtype=np.float32), np.zeros(n, np.float32)


def test_missing_barrier_is_reported(lib):
    x, out = data()
    with pytest.raises(LaunchError) as e:
        lib.kernel("shift_racy")(x, out, threads=256, group_size=64)
    message = str(e.value)
    assert message.startswith("[metalrt.sim] kernel 'shift_racy': the result depends on the order")
    # Forward, thread 0 reads its neighbour's slot before the neighbour wrote it (the 0xff fill
    # reads as NaN); in reverse order the neighbour wrote first.
    assert "buffer 'out' differs at out[0] (nan in the first run, 1 in the second;" in message
    assert "race on threadgroup memory" in message
    assert "METALRT_SIM_RACECHECK=0" in message


def test_correct_kernel_passes(lib):
    x, out = data()
    lib.kernel("shift")(x, out, threads=256, group_size=64)
    np.testing.assert_array_equal(out, np.roll(x.reshape(4, 64), -1, axis=1).ravel())


def test_uninitialised_threadgroup_memory_is_reported(lib):
    x, out = data(64)
    with pytest.raises(LaunchError, match=r"buffer 'out' differs at out\[0\] .* 64 of 64 elements differ"):
        lib.kernel("uninitialised")(x, out, threads=64, group_size=64)


def test_failure_only_in_the_second_order_says_so(lib):
    x, out = data(64)
    with pytest.raises(LaunchError) as e:
        lib.kernel("index_from_neighbour")(x, out, threads=64, group_size=64)
    message = str(e.value)
    assert "is outside buffer 1" in message  # the fill pattern used as an index
    assert "happened only in the race check's second run" in message


def test_second_run_starts_from_the_original_outputs(lib):
    x = np.arange(128, dtype=np.float32)
    out = np.full(128, 100, np.float32)
    lib.kernel("accumulate")(x, out, threads=128, group_size=64, threadgroup_memory={0: 256})
    np.testing.assert_array_equal(out, 100 + x)


def test_kernels_with_atomics_are_not_checked_by_default(lib):
    x, out = data()
    lib.kernel("shift_racy_atomics")(x, out, threads=256, group_size=64)  # no error: not checked


def test_racecheck_option(lib, sim_options):
    x, out = data()
    sim_options(racecheck="1")
    with pytest.raises(LaunchError, match="depends on the order"):
        lib.kernel("shift_racy_atomics")(x, out, threads=256, group_size=64)
    sim_options(racecheck="0")
    lib.kernel("shift_racy")(x, out, threads=256, group_size=64)
    sim_options(racecheck=True)
    with pytest.raises(LaunchError, match="depends on the order"):
        lib.kernel("shift_racy")(x, out, threads=256, group_size=64)


def test_bad_racecheck_option(sim_options):
    from metalrt import _C

    with pytest.raises(ValueError, match="racecheck='sometimes': expected 'auto'"):
        _C.sim_set_options(racecheck="sometimes")


SCRIPT = """
import numpy as np
from metalrt import _C
lib = _C.sim_load({so!r}, _C.parse_msl({msl!r}))
x, out = np.arange(256, dtype=np.float32), np.zeros(256, np.float32)
lib.kernel("shift_racy")(x, out, threads=256, group_size=64)
print("no error", _C.sim_options()["racecheck"])
"""


@pytest.mark.parametrize("value, expect", [("0", "no error 0"), ("1", "LaunchError"), ("auto", "LaunchError"),
                                           ("often", "METALRT_SIM_RACECHECK='often': expected 'auto'")])
def test_environment_variable(kernels, value, expect):
    so = kernels.compile(CPP)
    env = dict(os.environ, METALRT_SIM_RACECHECK=value)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT.format(so=str(so), msl=MSL))],
                            capture_output=True, text=True, env=env, timeout=120)
    assert expect in result.stdout + result.stderr
