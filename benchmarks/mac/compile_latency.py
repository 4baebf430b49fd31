"""Compile latency: cold (a source Metal has never seen), in-process cache hit, and a new process
with and without metalrt's MTLBinaryArchive (the front end, newLibraryWithSource, runs either way;
the archive saves the backend compile of the pipeline). Peers: torch.mps.compile_shader and MLX's
mx.fast.metal_kernel, cold.

    python benchmarks/mac/compile_latency.py [--n 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

from _common import mlx, require_mac, row, skipped, summarize, torch_compile_shader

# Big enough that the backend compile is visible: an unrolled tiled matmul.
TEMPLATE = """
#include <metal_stdlib>
using namespace metal;
// nonce: {nonce}
kernel void mm(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
               device float* c [[buffer(2)]], constant uint& n [[buffer(3)]],
               uint2 gid [[threadgroup_position_in_grid]], uint2 tid [[thread_position_in_threadgroup]]) {{
    threadgroup float ta[16][16], tb[16][16];
    float acc = 0.0f;
    uint row = gid.y * 16 + tid.y, col = gid.x * 16 + tid.x;
    for (uint k0 = 0; k0 < n; k0 += 16) {{
        ta[tid.y][tid.x] = a[row * n + k0 + tid.x];
        tb[tid.y][tid.x] = b[(k0 + tid.y) * n + col];
        threadgroup_barrier(mem_flags::mem_threadgroup);
        #pragma unroll
        for (uint k = 0; k < 16; ++k) acc = fma(ta[tid.y][k], tb[k][tid.x], acc);
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }}
    c[row * n + col] = acc;
}}
"""

CHILD = """
import json, sys, time
t0 = time.perf_counter()
import metalrt
from metalrt import _C
t1 = time.perf_counter()
lib = metalrt.compile(sys.argv[1], backend="metal")
_ = lib.mm
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "compile_s": t2 - t1, "stats": _C.metal.stats()}))
"""


def fresh_source():
    return TEMPLATE.format(nonce=uuid.uuid4().hex)


def child(source, cache_dir, archive=True):
    env = dict(os.environ, METALRT_CACHE_DIR=cache_dir, METALRT_METAL_ARCHIVE="1" if archive else "0")
    out = subprocess.run([sys.executable, "-c", CHILD, source], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10)
    a = ap.parse_args()
    require_mac()
    import metalrt

    print("compile latency (tiled matmul kernel)")
    cold, hit = [], []
    for _ in range(a.n):
        src = fresh_source()
        t0 = time.perf_counter()
        lib = metalrt.compile(src, backend="metal")
        _ = lib.mm
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _ = metalrt.compile(src, backend="metal").mm
        hit.append(time.perf_counter() - t0)
    row("metalrt cold (library + pipeline)", summarize(cold))
    row("metalrt in-process cache hit", summarize(hit))

    with_archive, without = [], []
    for _ in range(a.n):
        src = fresh_source()
        with tempfile.TemporaryDirectory() as d:
            child(src, d, archive=True)  # writes the archive
            r = child(src, d, archive=True)
            assert r["stats"]["archive_hits"] == 1, r
            with_archive.append(r["compile_s"])
        with tempfile.TemporaryDirectory() as d:
            child(src, d, archive=False)
            without.append(child(src, d, archive=False)["compile_s"])
    row("metalrt new process, archive", summarize(with_archive))
    row("metalrt new process, no archive", summarize(without))
    saved = sorted(without)[len(without) // 2] - sorted(with_archive)[len(with_archive) // 2]
    print(f"  the archive saves {saved * 1e3:.2f} ms per new process for this kernel (medians); Metal's own "
          "system shader cache may already make the no-archive case warm")

    torch, why = torch_compile_shader()
    if torch is not None:
        times = []
        for _ in range(a.n):
            t0 = time.perf_counter()
            torch.mps.compile_shader(fresh_source())
            times.append(time.perf_counter() - t0)
        row("torch.mps.compile_shader cold", summarize(times))
    else:
        skipped("torch.mps.compile_shader", why)

    mx, why = mlx()
    if mx is not None:
        times = []
        for _ in range(a.n):
            body = f"// {uuid.uuid4().hex}\n uint i = thread_position_in_grid.x; y[i] = x[i] * 2.0f;"
            x = mx.ones((256,))
            mx.eval(x)
            t0 = time.perf_counter()
            k = mx.fast.metal_kernel(name="k" + uuid.uuid4().hex[:8], input_names=["x"], output_names=["y"], source=body)
            mx.eval(k(inputs=[x], grid=(256, 1, 1), threadgroup=(256, 1, 1), output_shapes=[x.shape],
                      output_dtypes=[x.dtype])[0])
            times.append(time.perf_counter() - t0)
        row("mlx mx.fast.metal_kernel first call", summarize(times))
    else:
        skipped("mlx mx.fast.metal_kernel", why)


if __name__ == "__main__":
    main()
