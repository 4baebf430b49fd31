"""Microbenchmarks of the sim's executor, on kernels written by hand against the executor ABI
(tests/sim/executor/harness.h), so they measure the executor alone, not the front end's output:

    PYTHONPATH=src:python python benchmarks/sim_executor.py [--workers N] [--repeat R]

Prints launch overhead, the issue's three throughput figures with their targets (16M-float
elementwise < 1 s, barrier-heavy tiled 256^3 matmul < 2 s, simd_sum reduction of 4M floats < 1 s;
each with the race check as it runs by default, and the matmul also without it), the cost of a
fiber switch at a barrier, and the process's peak RSS. Timings are wall-clock medians; the CPU
time the process used alongside shows how much a busy machine stretched them.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from metalrt import _C  # noqa: E402

HARNESS = ROOT / "tests" / "sim" / "executor"
INCLUDE = ROOT / "src" / "metalrt" / "sim" / "include"

CPP = r"""
#include "harness.h"
static void nothing(msim_thread*) {}

static void add(msim_thread* t) {
  const uint i = gid(t);
  if (i < value<uint>(t, 3)) at<float>(t, 2, i) = at<float>(t, 0, i) + at<float>(t, 1, i);
}

// C = A B for n x n matrices, 16 x 16 tiles staged through threadgroup memory: two barriers
// per tile step.
static void matmul_tiled(msim_thread* t) {
  constexpr uint T = 16;
  float* As = threadgroup_array<float>(t, 0, T * T);
  float* Bs = threadgroup_array<float>(t, 1, T * T);
  const uint n = value<uint>(t, 3);
  const uint tx = t->thread_position_in_threadgroup[0], ty = t->thread_position_in_threadgroup[1];
  const uint col = t->thread_position_in_grid[0], row = t->thread_position_in_grid[1];
  float acc = 0;
  for (uint k0 = 0; k0 < n; k0 += T) {
    As[ty * T + tx] = at<float>(t, 0, long(row) * n + k0 + tx);
    Bs[ty * T + tx] = at<float>(t, 1, long(k0 + ty) * n + col);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint k = 0; k < T; ++k) acc += As[ty * T + k] * Bs[k * T + tx];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  at<float>(t, 2, long(row) * n + col) = acc;
}

// One partial sum per threadgroup: simd_sum, then the SIMD-groups' sums through threadgroup
// memory.
static void reduce_sum(msim_thread* t) {
  float* partial = threadgroup_array<float>(t, 0, 32);
  const uint i = gid(t);
  const float s = simd_sum(i < value<uint>(t, 3) ? at<float>(t, 0, i) : 0.0f);
  if (lane(t) == 0) partial[t->simdgroup_index_in_threadgroup] = s;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (t->simdgroup_index_in_threadgroup == 0) {
    const float total = simd_sum(lane(t) < t->simdgroups_per_threadgroup ? partial[lane(t)] : 0.0f);
    if (lane(t) == 0) at<float>(t, 2, t->threadgroup_position_in_grid[0]) = total;
  }
}

// 100 barriers per thread and nothing else: the cost of parking and resuming a fiber.
static void barriers(msim_thread* t) {
  for (int k = 0; k < 100; ++k) threadgroup_barrier(mem_flags::mem_none);
  (void)t;
}

HARNESS_LIBRARY(
    {"nothing", nothing, 0, 4},
    {"add", add, 0, 4},
    {"matmul_tiled", matmul_tiled, MSIM_USES_BARRIER | MSIM_USES_THREADGROUP, 4},
    {"reduce_sum", reduce_sum, MSIM_USES_SIMD | MSIM_USES_BARRIER | MSIM_USES_THREADGROUP, 4},
    {"barriers", barriers, MSIM_USES_BARRIER, 4})
"""

MSL = "".join(
    f"kernel void {name}(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]], "
    f"device float* c [[buffer(2)]], constant uint& n [[buffer(3)]]) {{}}\n"
    for name in ["nothing", "add", "matmul_tiled", "reduce_sum", "barriers"]
)


def find_clang() -> str:
    for name in [f"clang++-{v}" for v in range(25, 16, -1)] + ["clang++"]:
        path = shutil.which(name)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            m = re.search(r"clang version (\d+)", out)
            if m and int(m.group(1)) >= 17:
                return path
    sys.exit("needs clang++ 17 or newer (apt-get install clang-19)")


def build(directory: Path):
    src = directory / "bench.cpp"
    src.write_text(CPP)
    so = directory / f"bench-{hashlib.sha256(CPP.encode()).hexdigest()[:12]}.so"
    subprocess.run([find_clang(), "-std=c++17", "-O2", "-shared", "-fPIC", "-fno-exceptions", "-fno-rtti",
                    "-Xclang", "-ffloat16-excess-precision=none", f"-I{INCLUDE}", f"-I{HARNESS}",
                    str(src), "-o", str(so)], check=True)
    return _C.sim_load(str(so), _C.parse_msl(MSL))


CPU_SECONDS = [0.0]  # CPU time of the last timed() call's median run


def timed(fn, repeat: int) -> float:
    """Median wall-clock seconds of `repeat` calls; the matching CPU time goes to CPU_SECONDS."""
    runs = []
    for _ in range(repeat):
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start, time.process_time() - cpu))
    runs.sort()
    wall, CPU_SECONDS[0] = runs[len(runs) // 2]
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=0, help="executor worker threads (0: one per core)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _C.sim_set_options(workers=args.workers)
    rng = np.random.default_rng(0)
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp))
        one = np.zeros(1, np.float32)

        nothing = lib.kernel("nothing")
        nothing(one, one, one, 1, threads=1)
        overhead = timed(lambda: [nothing(one, one, one, 1, threads=1) for _ in range(200)], args.repeat) / 200
        rows.append(("launch overhead (1 thread, from Python)", overhead * 1e6, "us", None, None))

        n = 16 * 1024 * 1024
        a, b, c = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32), np.empty(n, np.float32)
        add = lib.kernel("add")
        add(a, b, c, n, threads=n)
        rows.append(("elementwise add, 16M floats", timed(lambda: add(a, b, c, n, threads=n), args.repeat), "s", 1.0,
                     CPU_SECONDS[0]))
        assert np.array_equal(c, a + b)
        del a, b, c

        m = 256
        A, B, C = rng.standard_normal((m, m), dtype=np.float32), rng.standard_normal((m, m), dtype=np.float32), np.empty((m, m), np.float32)
        matmul = lib.kernel("matmul_tiled")
        run = lambda: matmul(A, B, C, m, threads=(m, m), group_size=(16, 16))  # noqa: E731
        rows.append(("tiled matmul 256^3 (race check: auto, 2 runs)", timed(run, args.repeat), "s", 2.0, CPU_SECONDS[0]))
        np.testing.assert_allclose(C, A @ B, rtol=1e-4, atol=1e-4)
        previous = _C.sim_set_options(racecheck="0")
        rows.append(("tiled matmul 256^3 (race check off)", timed(run, args.repeat), "s", 2.0, CPU_SECONDS[0]))
        _C.sim_set_options(**previous)

        n = 4 * 1024 * 1024
        x, partial = rng.standard_normal(n, dtype=np.float32), np.empty(n // 256, np.float32)
        reduce = lib.kernel("reduce_sum")
        run = lambda: reduce(x, x, partial, n, threads=n, group_size=256)  # noqa: E731
        rows.append(("simd_sum reduction, 4M floats (race check: auto, 2 runs)", timed(run, args.repeat), "s", 1.0,
                     CPU_SECONDS[0]))
        np.testing.assert_allclose(partial, x.reshape(-1, 256).sum(1), rtol=1e-4, atol=1e-4)

        barriers = lib.kernel("barriers")
        groups = 64
        seconds = timed(lambda: barriers(one, one, one, 0, groups=groups, group_size=1024), args.repeat)
        rows.append(("barrier wait (park + resume one fiber)", seconds / (groups * 1024 * 100) * 1e9, "ns", None, None))

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 * 1024)
    rows.append(("peak RSS of this process", peak_mib, "MiB", None, None))

    options = _C.sim_options()
    print(f"sim executor on {_C.sim_device().name}; race check {options['racecheck']}, "
          f"{options['stack_kib']} KiB per fiber stack")
    for name, value, unit, target, cpu in rows:
        verdict = "" if target is None else (f"  target < {target:g} {unit}: " + ("ok" if value < target else "MISSED"))
        cpu_text = "" if cpu is None else f"  (cpu {cpu:.3f} s)"
        print(f"  {name:<58} {value:10.3f} {unit}{verdict}{cpu_text}")


if __name__ == "__main__":
    main()
