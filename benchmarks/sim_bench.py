"""The MSL simulator's figures on this machine: compile and cache times, launch overhead, the
three throughput targets of issue 2, and peak memory.

    PYTHONPATH=src python benchmarks/sim_bench.py [--repeat 3]

Every kernel runs with the sim's default settings (race check "auto": kernels that use
threadgroup memory run twice). Times are the best of --repeat runs. The sim is a correctness
tool: none of these figures says anything about a GPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

ELEMENTWISE = """
#include <metal_stdlib>
using namespace metal;
kernel void scale_shift(device const float* x [[buffer(0)]],
                        device float* y [[buffer(1)]],
                        constant float& alpha [[buffer(2)]],
                        uint i [[thread_position_in_grid]]) {
    y[i] = alpha * x[i] + 1.0f;
}
"""

MATMUL = """
#include <metal_stdlib>
using namespace metal;
#define TILE 16
kernel void matmul(device const float* A [[buffer(0)]],
                   device const float* B [[buffer(1)]],
                   device float* C [[buffer(2)]],
                   constant uint& n [[buffer(3)]],
                   uint2 gid [[thread_position_in_grid]],
                   uint2 lid [[thread_position_in_threadgroup]]) {
    threadgroup float As[TILE][TILE];
    threadgroup float Bs[TILE][TILE];
    float acc = 0.0f;
    for (uint t = 0; t < n; t += TILE) {
        As[lid.y][lid.x] = A[gid.y * n + t + lid.x];
        Bs[lid.y][lid.x] = B[(t + lid.y) * n + gid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint k = 0; k < TILE; ++k) acc += As[lid.y][k] * Bs[k][lid.x];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    C[gid.y * n + gid.x] = acc;
}
"""

SIMD_SUM = """
#include <metal_stdlib>
using namespace metal;
kernel void simd_sums(device const float* x [[buffer(0)]],
                      device float* partial [[buffer(1)]],
                      uint i [[thread_position_in_grid]],
                      uint lane [[thread_index_in_simdgroup]]) {
    float s = simd_sum(x[i]);
    if (lane == 0) partial[i / 32] = s;
}
"""

TINY = """
#include <metal_stdlib>
using namespace metal;
kernel void touch(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] += 1.0f; }
"""

CHILD = textwrap.dedent("""
    import sys, time
    t0 = time.perf_counter()
    import metalrt
    t1 = time.perf_counter()
    metalrt.compile(sys.stdin.read(), backend="sim")
    t2 = time.perf_counter()
    print(f"{t1 - t0:.6f} {t2 - t1:.6f}")
""")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def row(label: str, seconds: float, target: float | None = None, note: str = "") -> None:
    verdict = ""
    if target is not None:
        verdict = f"  (target < {target:g} s: {'met' if seconds < target else 'MISSED'})"
    value = f"{seconds * 1e6:10.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:10.2f} ms"
    print(f"  {label:<44} {value}{verdict}{'  ' + note if note else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cache = tempfile.mkdtemp(prefix="metalrt-sim-bench-")
    os.environ["METALRT_CACHE_DIR"] = cache
    import torch

    import metalrt
    from metalrt import _C
    from metalrt.sim import compiler

    dev = metalrt.device("sim")
    host = compiler.find()
    print(f"sim benchmark: {dev.name}, host compiler {host.kind} {'.'.join(map(str, host.version))}, "
          f"race check {_C.sim_options()['racecheck']}, torch {torch.__version__}")

    print("compile")
    t = time.perf_counter()
    metalrt.compile(MATMUL, backend="sim")
    row("cold compile (tiled matmul source)", time.perf_counter() - t)
    row("cache hit, same process (metalrt.compile)", best(lambda: metalrt.compile(MATMUL, backend="sim"),
                                                       1000))
    child = subprocess.run([sys.executable, "-c", CHILD], input=MATMUL, capture_output=True, text=True,
                           env=dict(os.environ), check=True)
    import_s, compile_s = map(float, child.stdout.split())
    row("cache hit, new process (metalrt.compile)", compile_s, note=f"(import metalrt: {import_s * 1e3:.1f} ms)")

    print("launch")
    tiny = metalrt.compile(TINY, backend="sim")
    y = torch.zeros(1)
    n = 2000
    per = best(lambda: [tiny.touch(y, threads=1) for _ in range(n)], args.repeat) / n
    row("launch overhead (1 thread, plain loop)", per)

    print("throughput")
    lib = metalrt.compile(ELEMENTWISE, backend="sim")
    x = torch.randn(16 * 1024 * 1024)
    out = torch.empty_like(x)
    s = best(lambda: lib.scale_shift(x, out, 2.0, threads=x.numel(), group_size=1024), args.repeat)
    assert torch.equal(out, 2.0 * x + 1.0)
    row("elementwise, 16M floats", s, 1.0)

    lib = metalrt.compile(MATMUL, backend="sim")
    N = 256
    a, b, c = torch.randn(N, N), torch.randn(N, N), torch.empty(N, N)
    s = best(lambda: lib.matmul(a, b, c, N, threads=(N, N), group_size=(16, 16)), args.repeat)
    torch.testing.assert_close(c, a @ b, rtol=1e-4, atol=1e-4)
    row("tiled matmul 256x256x256 (barriers)", s, 2.0)

    lib = metalrt.compile(SIMD_SUM, backend="sim")
    x = torch.randn(4 * 1024 * 1024)
    partial = torch.empty(x.numel() // 32)
    s = best(lambda: lib.simd_sums(x, partial, threads=x.numel(), group_size=1024), args.repeat)
    torch.testing.assert_close(partial, x.view(-1, 32).sum(1), rtol=1e-5, atol=1e-5)
    row("simd_sum over 4M floats", s, 1.0)

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("memory")
    print(f"  {'peak RSS of this process':<44} {rss_kib / 1024:10.1f} MiB "
          f"(inputs and outputs above: {(16 * 2 + 4 * 3 / 16 + 4 + 1 / 8) * 4:.0f} MiB)")


if __name__ == "__main__":
    main()
