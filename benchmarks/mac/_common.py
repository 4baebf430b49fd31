"""Shared helpers for the Mac comparisons: robust timing summaries and peers that may be absent."""

from __future__ import annotations

import statistics
import sys
import time


def require_mac():
    import metalrt

    if "metal" not in metalrt.backends():
        sys.exit("these benchmarks need a Mac with a Metal device (metalrt.backends() has no 'metal')")


def torch_mps():
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.backends.mps.is_available():
        return None, "torch has no MPS device"
    return torch, None


def torch_compile_shader():
    torch, why = torch_mps()
    if torch is None:
        return None, why
    if not hasattr(torch.mps, "compile_shader"):
        return None, f"torch {torch.__version__} has no torch.mps.compile_shader (needs 2.6 or newer)"
    return torch, None


def mlx():
    try:
        import mlx.core as mx
    except ImportError:
        return None, "mlx is not installed (pip install mlx)"
    if not hasattr(mx, "fast") or not hasattr(mx.fast, "metal_kernel"):
        return None, "this mlx has no mx.fast.metal_kernel"
    return mx, None


def summarize(samples_s: list[float]) -> str:
    xs = sorted(samples_s)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    us = 1e6
    return f"median {statistics.median(xs) * us:9.1f} us   p10 {q(0.1) * us:9.1f}   p90 {q(0.9) * us:9.1f}   (n={len(xs)})"


def repeat(fn, n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def row(name: str, text: str) -> None:
    print(f"  {name:<38} {text}")


def skipped(name: str, why: str) -> None:
    print(f"  {name:<38} skipped: {why}")
