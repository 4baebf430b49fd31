"""Host time to launch a tiny kernel and see it finish, on metalrt (own queue, each launch waited
for), torch.mps.compile_shader (PyTorch's MPS stream) and MLX's mx.fast.metal_kernel.

metalrt's own-queue path waits for every launch (that is what orders it with PyTorch's MPS work),
so the fair comparison is "launch + wait": the peers' numbers are given both with a wait after
every launch and with one wait after N launches (their asynchronous best case).

    python benchmarks/mac/launch_overhead.py [--n 2000] [--size 1024]
"""

from __future__ import annotations

import argparse
import time

from _common import mlx, repeat, require_mac, row, skipped, summarize, torch_compile_shader, torch_mps

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void add1(device float* y [[buffer(0)]], device const float* x [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    y[i] = x[i] + 1.0f;
}
"""

MLX_BODY = """
    uint i = thread_position_in_grid.x;
    y[i] = x[i] + 1.0f;
"""


def per_launch_batched(launch, sync, n):
    launch()
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        launch()
    sync()
    return (time.perf_counter() - t0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    a = ap.parse_args()
    require_mac()
    import metalrt

    print(f"launch overhead: add1 over {a.size} floats, {a.n} launches")
    torch, why = torch_mps()
    lib = metalrt.compile(SOURCE, backend="metal")
    if torch is not None:
        x = torch.randn(a.size, device="mps")
        y = torch.empty_like(x)
        row("metalrt, MPS tensors (launch+wait)", summarize(repeat(lambda: lib.add1(y, x, threads=a.size), a.n)))
        xc, yc = x.cpu(), y.cpu()
        row("metalrt, CPU tensors (launch+wait)", summarize(repeat(lambda: lib.add1(yc, xc, threads=a.size), a.n)))
    else:
        import numpy as np

        xn = np.random.rand(a.size).astype(np.float32)
        yn = np.empty_like(xn)
        row("metalrt, NumPy (launch+wait)", summarize(repeat(lambda: lib.add1(yn, xn, threads=a.size), a.n)))
        skipped("metalrt, MPS tensors", why)

    torch_cs, why = torch_compile_shader()
    if torch_cs is not None:
        shader = torch_cs.mps.compile_shader(SOURCE)
        launch = lambda: shader.add1(y, x, threads=a.size)
        row("torch.mps.compile_shader (launch+wait)",
            summarize(repeat(lambda: (launch(), torch_cs.mps.synchronize()), a.n)))
        row("torch.mps.compile_shader (batched)",
            f"{per_launch_batched(launch, torch_cs.mps.synchronize, a.n) * 1e6:9.1f} us per launch")
    else:
        skipped("torch.mps.compile_shader", why)

    mx, why = mlx()
    if mx is not None:
        kernel = mx.fast.metal_kernel(name="add1", input_names=["x"], output_names=["y"], source=MLX_BODY)
        xm = mx.random.normal((a.size,))
        mx.eval(xm)
        call = lambda: kernel(inputs=[xm], grid=(a.size, 1, 1), threadgroup=(256, 1, 1),
                              output_shapes=[xm.shape], output_dtypes=[xm.dtype])[0]
        row("mlx mx.fast.metal_kernel (launch+wait)", summarize(repeat(lambda: mx.eval(call()), a.n)))
        outs = []
        row("mlx mx.fast.metal_kernel (batched)",
            f"{per_launch_batched(lambda: outs.append(call()), lambda: (mx.eval(*outs), outs.clear()), a.n) * 1e6:9.1f} us per launch")
    else:
        skipped("mlx mx.fast.metal_kernel", why)


if __name__ == "__main__":
    main()
