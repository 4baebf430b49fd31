"""Threadgroup memory: one allocation per threadgroup shared by its threads, fresh and filled
with a poison pattern for every group, [[threadgroup(i)]] parameters sized at launch, the
32 KiB limit on their sum, and find_region, which gives checked pointers built from raw
addresses their bounds."""

import numpy as np
import pytest

from metalrt.errors import LaunchError

CPP = r"""
typedef unsigned long ulong;
// out[gid] = the address of the group's threadgroup array, as every thread sees it.
static void addresses(msim_thread* t) {
  float* tile = threadgroup_array<float>(t, 0, 16);
  at<ulong>(t, 1, gid(t)) = (ulong)tile;
}

// Reads before anyone writes: the poison pattern of a fresh group.
static void fresh(msim_thread* t) {
  uint* tile = threadgroup_array<uint>(t, 0, 256);
  at<uint>(t, 1, gid(t)) = tile[lid(t)];
  tile[lid(t)] = 7;  // a later group must not see this
}

static void too_big(msim_thread* t) {
  float* a = threadgroup_array<float>(t, 0, 4096);   // 16 KiB
  float* b = threadgroup_array<float>(t, 1, 4500);   // 18000 bytes more: 34384 in all
  a[0] = b[0] = 0;
}

static void half_static(msim_thread* t) {
  float* a = threadgroup_array<float>(t, 0, 4096);   // 16 KiB
  a[lid(t)] = 1;
}

// Two [[threadgroup(i)]] parameters and a threadgroup variable; each thread records, for a
// pointer into each, what find_region says about it (kind, size, offset of the pointer).
static void regions(msim_thread* t) {
  float* p0 = threadgroup_param<float>(t, 2);
  float* p1 = threadgroup_param<float>(t, 3);
  float* v = threadgroup_array<float>(t, 0, 10);
  const msim_runtime* rt = t->launch->rt;
  const void* probes[] = {p0 + 3, p1 + 1, v + 9, &at<float>(t, 0, 5), p0 + 1000000};
  for (int k = 0; k < 5; ++k) {
    const msim_region* r = rt->find_region(t, probes[k], 4);
    ulong* row = &at<ulong>(t, 1, gid(t) * 15 + k * 3);
    row[0] = r ? r->kind : 99;
    row[1] = r ? r->size : 0;
    row[2] = r ? (ulong)((const unsigned char*)probes[k] - r->data) : 0;
  }
}

HARNESS_LIBRARY(
    {"addresses", addresses, MSIM_USES_THREADGROUP, 2},
    {"fresh", fresh, MSIM_USES_THREADGROUP, 2},
    {"too_big", too_big, MSIM_USES_THREADGROUP, 2},
    {"half_static", half_static, MSIM_USES_THREADGROUP, 3},
    {"regions", regions, MSIM_USES_THREADGROUP, 4})
"""

MSL = """
kernel void addresses(device const float* in [[buffer(0)]], device ulong* out [[buffer(1)]]) {}
kernel void fresh(device const float* in [[buffer(0)]], device uint* out [[buffer(1)]]) {}
kernel void too_big(device const float* in [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void half_static(device const float* in [[buffer(0)]], device float* out [[buffer(1)]],
                        threadgroup float* scratch [[threadgroup(0)]]) {}
kernel void regions(device const float* in [[buffer(0)]], device ulong* out [[buffer(1)]],
                    threadgroup float* a [[threadgroup(0)]], threadgroup float* b [[threadgroup(1)]]) {}
"""


@pytest.fixture(scope="module")
def lib(kernels):
    return kernels.load(CPP, MSL)


def test_one_address_per_group(lib, sim_options):
    sim_options(racecheck="0")  # addresses differ between runs, legitimately
    out = np.zeros(256, np.uint64)
    lib.kernel("addresses")(np.zeros(1, np.float32), out, threads=256, group_size=64)
    for group in out.reshape(4, 64):
        assert len(set(group.tolist())) == 1


def test_fresh_poisoned_memory_for_every_group(lib, sim_options):
    sim_options(racecheck="0", workers=1)  # one worker: every group reuses the same memory
    out = np.zeros(1024, np.uint32)
    lib.kernel("fresh")(np.zeros(1, np.float32), out, threads=1024, group_size=256)
    np.testing.assert_array_equal(out, 0xFFFFFFFF)  # the fill pattern, never a previous group's 7


def test_threadgroup_variables_over_the_limit(lib):
    with pytest.raises(LaunchError) as e:
        lib.kernel("too_big")(np.zeros(1, np.float32), np.zeros(1, np.float32), threads=32)
    message = str(e.value)
    assert "kernel 'too_big', threadgroup (0, 0, 0), thread (0, 0, 0)" in message
    assert "threadgroup memory exceeds the limit of 32768 bytes per threadgroup" in message
    assert "threadgroup variables need at least 34384 bytes" in message


def test_static_and_dynamic_memory_together(lib):
    k = lib.kernel("half_static")
    x = np.zeros(64, np.float32)
    k(x, x, threads=64, group_size=64, threadgroup_memory={0: 1024})
    # The launch taught the kernel its static threadgroup memory, which its limits now report.
    assert k.limits.static_threadgroup_memory == 16384
    with pytest.raises(LaunchError, match="32768"):
        k(x, x, threads=64, group_size=64, threadgroup_memory={0: 20000})


def test_dynamic_memory_over_the_limit(lib):
    x = np.zeros(64, np.float32)
    with pytest.raises(LaunchError, match="32768"):
        lib.kernel("half_static")(x, x, threads=64, group_size=64, threadgroup_memory={0: 40000})


def test_find_region(lib):
    out = np.zeros(2 * 15, np.uint64)
    lib.kernel("regions")(np.zeros(8, np.float32), out, threads=2, group_size=2,
                          threadgroup_memory={0: 64, 1: 100})
    rows = out.reshape(2, 5, 3)
    THREADGROUP, BUFFER, NONE = 3, 1, 99
    for r in rows:
        assert r[0].tolist() == [THREADGROUP, 64, 12]       # [[threadgroup(0)]], 64 bytes
        assert r[1].tolist() == [THREADGROUP, 100, 4]       # [[threadgroup(1)]], 100 bytes
        assert r[2].tolist() == [THREADGROUP, 40, 36]       # the threadgroup variable
        assert r[3].tolist() == [BUFFER, 32, 20]            # the bound buffer `in`
        assert r[4][0] == NONE                              # outside everything


def test_group_size_above_the_limit(lib):
    with pytest.raises(LaunchError, match="1024"):
        lib.kernel("addresses")(np.zeros(1, np.float32), np.zeros(2048, np.uint64), threads=2048, group_size=2048)
