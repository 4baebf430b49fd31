"""threadgroup_barrier: every thread of a group waits for all the others, in 1-D, 2-D and 3-D
groups, partial edge groups included; and every way of misusing it is a LaunchError that names
the kernel, the threadgroup, the thread and the line."""

import numpy as np
import pytest

from metalrt.errors import LaunchError

CPP = r"""
// Each thread stores its input in threadgroup memory and, after the barrier, reads the one its
// mirror image in the group stored.
static void mirror(msim_thread* t) {
  float* tile = threadgroup_array<float>(t, 0, 1024);
  const uint n = t->threads_per_threadgroup[0] * t->threads_per_threadgroup[1] * t->threads_per_threadgroup[2];
  const uint i = t->thread_index_in_threadgroup;
  const uint width = t->launch->threads_per_grid[0], height = t->launch->threads_per_grid[1];
  const uint* p = t->thread_position_in_grid;
  const long g = long(p[2]) * width * height + long(p[1]) * width + p[0];
  tile[i] = at<float>(t, 0, g);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  at<float>(t, 1, g) = tile[n - 1 - i];
}

// A tree reduction with a barrier per level: out[group] = sum of the group's inputs.
static void group_sum(msim_thread* t) {
  float* partial = threadgroup_param<float>(t, 2);
  const uint i = lid(t), n = t->threads_per_threadgroup[0];
  partial[i] = at<float>(t, 0, gid(t));
  for (uint stride = 1; stride < n; stride *= 2) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (i % (2 * stride) == 0 && i + stride < n) partial[i] += partial[i + stride];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (i == 0) at<float>(t, 1, t->threadgroup_position_in_grid[0]) = partial[0];
}

#line 100
static void early_return(msim_thread* t) {
  if (lid(t) >= 16) return;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  at<float>(t, 1, gid(t)) = 1.0f;
}

#line 200
static void two_barriers(msim_thread* t) {
  if (lid(t) % 2)
    threadgroup_barrier(mem_flags::mem_threadgroup);
  else
    threadgroup_barrier(mem_flags::mem_device);
}

#line 300
static void first_returns(msim_thread* t) {
  if (lid(t) == 0) return;
  threadgroup_barrier(mem_flags::mem_none);
}

#line 400
static void uneven_loop(msim_thread* t) {
  for (uint k = 0; k < lid(t) % 3; ++k) threadgroup_barrier(mem_flags::mem_threadgroup);
}

static void undeclared(msim_thread* t) { threadgroup_barrier(mem_flags::mem_threadgroup); }

HARNESS_LIBRARY(
    {"mirror", mirror, MSIM_USES_BARRIER | MSIM_USES_THREADGROUP, 2},
    {"group_sum", group_sum, MSIM_USES_BARRIER | MSIM_USES_THREADGROUP, 3},
    {"early_return", early_return, MSIM_USES_BARRIER, 2},
    {"two_barriers", two_barriers, MSIM_USES_BARRIER, 2},
    {"first_returns", first_returns, MSIM_USES_BARRIER, 2},
    {"uneven_loop", uneven_loop, MSIM_USES_BARRIER, 2},
    {"undeclared", undeclared, 0, 2})
"""

MSL = """
kernel void mirror(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void group_sum(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                      threadgroup float* partial [[threadgroup(0)]]) {}
kernel void early_return(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void two_barriers(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void first_returns(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void uneven_loop(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void undeclared(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
"""


@pytest.fixture(scope="module")
def lib(kernels):
    return kernels.load(CPP, MSL)


def mirror_expected(x: np.ndarray, group: tuple[int, int, int]) -> np.ndarray:
    """What `mirror` computes: within each (possibly partial) group, linear index i gets n-1-i."""
    depth, height, width = x.shape
    out = np.empty_like(x)
    gx, gy, gz = group
    for z0 in range(0, depth, gz):
        for y0 in range(0, height, gy):
            for x0 in range(0, width, gx):
                block = x[z0:z0 + gz, y0:y0 + gy, x0:x0 + gx]
                out[z0:z0 + gz, y0:y0 + gy, x0:x0 + gx] = block.reshape(-1)[::-1].reshape(block.shape)
    return out


@pytest.mark.parametrize(
    "shape, group",
    [
        ((1, 1, 1000), (256, 1, 1)),   # 1-D with a partial last group
        ((1, 10, 20), (8, 4, 1)),      # 2-D, partial groups at both edges
        ((5, 6, 7), (4, 2, 3)),        # 3-D, partial everywhere
        ((1, 1, 4096), (1024, 1, 1)),  # the largest group
    ],
)
def test_barrier_orders_threadgroup_memory(lib, shape, group):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = np.zeros_like(x)
    depth, height, width = shape
    lib.kernel("mirror")(x, out, threads=(width, height, depth), group_size=group)
    np.testing.assert_array_equal(out, mirror_expected(x, group))


@pytest.mark.parametrize("group", [32, 100, 256, 1024])
def test_barrier_in_a_loop(lib, group):
    x = np.random.default_rng(1).standard_normal(group * 5).astype(np.float32)
    out = np.zeros(5, np.float32)
    lib.kernel("group_sum")(x, out, threads=group * 5, group_size=group, threadgroup_memory={0: 4 * group})
    np.testing.assert_allclose(out, x.reshape(5, group).sum(axis=1), rtol=1e-5, atol=1e-5)


def test_thread_returning_before_a_barrier(lib):
    x = np.zeros(64, np.float32)
    with pytest.raises(LaunchError) as e:
        lib.kernel("early_return")(x, x, threads=64, group_size=64)
    message = str(e.value)
    assert "kernel 'early_return'" in message
    assert "threadgroup (0, 0, 0)" in message
    assert "thread (16, 0, 0) returned" in message
    assert "threadgroup_barrier at line 102" in message
    assert "Every thread of a threadgroup must reach every barrier" in message


def test_threads_at_different_barriers(lib):
    x = np.zeros(64, np.float32)
    with pytest.raises(LaunchError) as e:
        lib.kernel("two_barriers")(x, x, threads=64, group_size=32)
    message = str(e.value)
    assert "threads wait at different barriers" in message
    assert "line 202" in message and "line 204" in message
    assert "kernel 'two_barriers', threadgroup (0, 0, 0)" in message


def test_barrier_after_a_thread_returned(lib):
    x = np.zeros(32, np.float32)
    with pytest.raises(LaunchError) as e:
        lib.kernel("first_returns")(x, x, threads=32, group_size=32)
    message = str(e.value)
    assert "reached the threadgroup_barrier at line 302" in message
    assert "after thread (0, 0, 0) had returned" in message


def test_barrier_count_differs_between_threads(lib):
    x = np.zeros(32, np.float32)
    with pytest.raises(LaunchError) as e:
        lib.kernel("uneven_loop")(x, x, threads=32, group_size=32)
    assert "threadgroup_barrier at line 401" in str(e.value)
    assert "returned" in str(e.value)


def test_barrier_in_a_kernel_declared_without_barriers(lib):
    x = np.zeros(4, np.float32)
    with pytest.raises(LaunchError, match="does not declare MSIM_USES_BARRIER"):
        lib.kernel("undeclared")(x, x, threads=4)


def test_executor_usable_after_barrier_errors(lib):
    for name in ["early_return", "two_barriers", "first_returns"]:
        x = np.zeros(64, np.float32)
        with pytest.raises(LaunchError):
            lib.kernel(name)(x, x, threads=64, group_size=64)
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 64)
    out = np.zeros_like(x)
    lib.kernel("mirror")(x, out, threads=64, group_size=64)
    np.testing.assert_array_equal(out.ravel(), x.ravel()[::-1])
