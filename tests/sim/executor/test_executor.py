"""The executor as a whole: every builtin a thread sees, parallel threadgroups agreeing with one
worker, the memory its fibers take, loading libraries (and refusing bad ones), the device, the
timer and the options."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from metalrt import _C
from metalrt.errors import ArgumentError, CompileError, LaunchError

CPP = r"""
#ifndef FLAGS
#define FLAGS 0
#endif
// Writes every field of the thread context: 26 uints per thread, at its linear grid index.
static void builtins(msim_thread* t) {
  const uint* p = t->thread_position_in_grid;
  const uint* g = t->launch->threads_per_grid;
  uint* o = &at<uint>(t, 1, (long(p[2]) * g[1] * g[0] + long(p[1]) * g[0] + p[0]) * 26);
  const uint* fields[] = {t->thread_position_in_grid, t->thread_position_in_threadgroup,
                          t->threadgroup_position_in_grid, t->threads_per_threadgroup,
                          t->launch->threadgroups_per_grid, t->launch->threads_per_grid,
                          t->launch->dispatch_threads_per_threadgroup};
  for (int f = 0; f < 7; ++f)
    for (int d = 0; d < 3; ++d) o[f * 3 + d] = fields[f][d];
  o[21] = t->thread_index_in_threadgroup;
  o[22] = t->thread_index_in_simdgroup | t->simdgroup_index_in_threadgroup << 8 |
          t->threads_per_simdgroup << 16 | t->simdgroups_per_threadgroup << 24;
  o[23] = t->thread_index_in_quadgroup | t->quadgroup_index_in_threadgroup << 8;
  o[24] = t->quadgroups_per_threadgroup;
  o[25] = t->lanes_in_simdgroup;
  if (FLAGS & MSIM_USES_SIMD) o[25] = simd_sum(1u);  // the active lanes are the lanes there are
}

// Per group: a threadgroup reduction with barriers and SIMD-group sums; plenty of switching.
static void group_stats(msim_thread* t) {
  float* partial = threadgroup_array<float>(t, 0, 32);
  const float x = at<float>(t, 0, gid(t));
  const float s = simd_sum(x * x);
  if (lane(t) == 0) partial[t->simdgroup_index_in_threadgroup] = s;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (lid(t) == 0) {
    float total = 0;
    for (uint k = 0; k < t->simdgroups_per_threadgroup; ++k) total += partial[k];
    at<float>(t, 1, t->threadgroup_position_in_grid[0]) = total;
  }
}

// Each thread of a 1024-thread group touches `kib` KiB of its stack, then waits at a barrier.
__attribute__((noinline)) static float touch(uint kib) {
  volatile char buffer[48 * 1024];
  for (uint i = 0; i < kib * 1024 && i < sizeof buffer; i += 512) buffer[i] = char(i);
  return buffer[0];
}
static void stack_user(msim_thread* t) {
  const float v = touch(at<uint>(t, 0, 0));
  threadgroup_barrier(mem_flags::mem_none);
  if (gid(t) == 0) at<float>(t, 1, 0) = v;
}

HARNESS_LIBRARY(
    {"builtins", builtins, FLAGS, 2},
    {"group_stats", group_stats, MSIM_USES_SIMD | MSIM_USES_BARRIER | MSIM_USES_THREADGROUP, 2},
    {"stack_user", stack_user, MSIM_USES_BARRIER, 2})
"""

MSL = """
kernel void builtins(device const uint* x [[buffer(0)]], device uint* out [[buffer(1)]]) {}
kernel void group_stats(device const float* x [[buffer(0)]], device float* out [[buffer(1)]]) {}
kernel void stack_user(device const uint* x [[buffer(0)]], device float* out [[buffer(1)]]) {}
"""


@pytest.fixture(scope="module", params=["plain", "fibers"])
def lib(request, kernels):
    flags = {"plain": "0", "fibers": "MSIM_USES_SIMD"}[request.param]
    return kernels.load(CPP, MSL, defines={"FLAGS": flags})


def expected_builtins(threads, group):
    rows = []
    ngroups = [-(-t // g) for t, g in zip(threads, group)]
    for z in range(threads[2]):
        for y in range(threads[1]):
            for x in range(threads[0]):
                pos = (x, y, z)
                gpos = tuple(p // g for p, g in zip(pos, group))
                local = tuple(p % g for p, g in zip(pos, group))
                size = tuple(min(g, t - gp * g) for t, g, gp in zip(threads, group, gpos))
                n = size[0] * size[1] * size[2]
                index = local[0] + size[0] * (local[1] + size[1] * local[2])
                lanes = min(32, n - index // 32 * 32)
                rows.append([*pos, *local, *gpos, *size, *ngroups, *threads, *group, index,
                             index % 32 | (index // 32) << 8 | 32 << 16 | (-(-n // 32)) << 24,
                             index % 4 | (index // 4) << 8, -(-n // 4), lanes])
    return np.array(rows, np.uint32)


@pytest.mark.parametrize("threads, group", [((100, 1, 1), (48, 1, 1)), ((13, 7, 1), (8, 4, 1)),
                                            ((9, 5, 6), (4, 3, 2)), ((64, 2, 2), (32, 2, 2))])
def test_every_builtin(lib, threads, group):
    n = threads[0] * threads[1] * threads[2]
    out = np.zeros(n * 26, np.uint32)
    lib.kernel("builtins")(np.zeros(1, np.uint32), out, threads=threads, group_size=group)
    np.testing.assert_array_equal(out.reshape(n, 26), expected_builtins(threads, group))


def test_builtins_with_groups_dispatch(lib):
    out = np.zeros(4 * 64 * 26, np.uint32)
    lib.kernel("builtins")(np.zeros(1, np.uint32), out, groups=4, group_size=64)
    np.testing.assert_array_equal(out.reshape(-1, 26), expected_builtins((256, 1, 1), (64, 1, 1)))


def test_parallel_groups_match_one_worker(lib, sim_options):
    x = np.random.default_rng(5).standard_normal(300 * 96).astype(np.float32)
    results = []
    for workers in (1, 2, 3):
        sim_options(workers=workers)
        assert _C.sim_options()["worker_count"] == workers
        out = np.zeros(300, np.float32)
        lib.kernel("group_stats")(x, out, threads=x.size, group_size=96)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_allclose(results[0], (x.reshape(300, 96) ** 2).sum(1), rtol=1e-5)


RSS_SCRIPT = """
import numpy as np
from metalrt import _C
_C.sim_set_options(workers=1)
lib = _C.sim_load({so!r}, _C.parse_msl({msl!r}))
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
out = np.zeros(1, np.float32)
lib.kernel("stack_user")(np.array([0], np.uint32), out, threads=32, group_size=32)  # warm up
before = peak_kib()
lib.kernel("stack_user")(np.array([{kib}], np.uint32), out, threads=1024, group_size=1024)
print("grew", peak_kib() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
@pytest.mark.parametrize("kib, limit_mib", [(1, 16), (40, 64)])
def test_fibers_of_a_1024_thread_group_stay_under_64_mib(kernels, kib, limit_mib):
    so = kernels.compile(CPP, defines={"FLAGS": "0"})
    script = textwrap.dedent(RSS_SCRIPT.format(so=str(so), msl=MSL, kib=kib))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "grew" in result.stdout, result.stderr
    grew_mib = int(result.stdout.split()[-1]) / 1024
    assert grew_mib < limit_mib, f"peak RSS grew by {grew_mib:.1f} MiB for 1024 fibers using {kib} KiB each"


def test_abi_version_mismatch(kernels):
    so = kernels.compile(CPP, defines={"FLAGS": "0", "HARNESS_ABI_VERSION": "999"})
    with pytest.raises(CompileError, match=r"was built for executor ABI version 999, but this runtime speaks "
                                           r"version 1; delete it"):
        _C.sim_load(str(so), _C.parse_msl(MSL))
    assert _C.sim_abi_version() == 1


def test_library_without_an_entry_for_a_kernel(kernels):
    so = kernels.compile(CPP, defines={"FLAGS": "0"})
    msl = MSL + "kernel void missing(device float* x [[buffer(0)]]) {}\n"
    with pytest.raises(CompileError, match="has no entry for kernel 'missing'"):
        _C.sim_load(str(so), _C.parse_msl(msl))


def test_entry_with_other_parameters(kernels):
    so = kernels.compile(CPP, defines={"FLAGS": "0"})
    msl = MSL.replace("device uint* out [[buffer(1)]]) {}", "device uint* out [[buffer(1)]], uint i [[thread_index_in_threadgroup]]) {}", 1)
    with pytest.raises(CompileError, match="kernel 'builtins': the compiled entry takes 2 parameters but the source declares 3"):
        _C.sim_load(str(so), _C.parse_msl(msl))


def test_not_a_library(tmp_path):
    with pytest.raises(CompileError, match="cannot load the compiled kernel library"):
        _C.sim_load(str(tmp_path / "nothing.so"), _C.parse_msl(MSL))
    text = tmp_path / "text.so"
    text.write_text("not an ELF file")
    with pytest.raises(CompileError, match="cannot load"):
        _C.sim_load(str(text), _C.parse_msl(MSL))


def test_unknown_kernel_name(lib):
    with pytest.raises(ArgumentError, match="no kernel named 'nope' in this library; it has: builtins, group_stats, stack_user"):
        lib.kernel("nope")
    assert lib.kernel_names() == ["builtins", "group_stats", "stack_user"]


def test_device():
    d = _C.sim_device()
    assert d.backend == "sim" and d.name.startswith("sim (cpu, ")
    assert d.target in ("sim-x86_64", "sim-arm64", "sim-cpu")
    assert (d.max_threads_per_group, d.simd_width, d.max_threadgroup_memory) == (1024, 32, 32768)
    assert d.unified_memory and d.memory_bytes > 0


def test_timer(lib):
    x = np.random.default_rng(6).standard_normal(64 * 96).astype(np.float32)
    out = np.zeros(64, np.float32)
    timer = _C.sim_timer()
    assert timer.method == "cpu-clock (sim: not a performance measure)"
    with pytest.raises(Exception, match="before timer.stop"):
        timer.elapsed_ms()
    timer.start()
    timer.stop()
    idle = timer.elapsed_ms()
    assert idle == 0.0  # no launch in between: nothing is counted
    timer.start()
    lib.kernel("group_stats")(x, out, threads=x.size, group_size=96)
    timer.stop()
    assert timer.elapsed_ms() > 0


def test_options_round_trip(sim_options):
    before = _C.sim_options()
    assert set(before) == {"workers", "worker_count", "racecheck", "stack_kib"}
    sim_options(workers=3, racecheck="1", stack_kib=64)
    assert _C.sim_options() == {"workers": 3, "worker_count": 3, "racecheck": "1", "stack_kib": 64}
    assert _C.sim_device().name == "sim (cpu, 3 threads)"
    with pytest.raises(ValueError, match="workers=1000: at most 256"):
        _C.sim_set_options(workers=1000)


def test_bad_environment_variables(kernels):
    script = "from metalrt import _C; print(_C.sim_options())"
    for name, value, message in [("METALRT_SIM_WORKERS", "many", "METALRT_SIM_WORKERS='many': expected a whole number"),
                                 ("METALRT_SIM_STACK_KIB", "8", "METALRT_SIM_STACK_KIB='8': expected a whole number from 16")]:
        env = dict(os.environ, **{name: value})
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert message in result.stderr
    env = dict(os.environ, METALRT_SIM_WORKERS="3", METALRT_SIM_STACK_KIB="100")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert "'workers': 3" in result.stdout and "'stack_kib': 100" in result.stdout
