"""Timing: one method for the reference and the candidate, per backend, that sees all their work.

A backend fills in `DeviceTiming` (four small methods); `measure()` is the one loop every subject
goes through, in the judge (reference, baselines) and in the candidate's process alike:

    warm-up runs (on refilled inputs too)
    repeat, at least `min_runs` times, until the median is stable or the budget is spent:
        refill the inputs with new values (untimed; a cache keyed on contents never hits)
        flush the device's caches (untimed)
        ms = time_call(fn)          # device-wide sync before the final timestamp
    median, min, max, interquartile range, run count

After the timed runs, one more (untimed) call runs under `metalrt.profile()` (`profile_call`):
the per-kernel GPU times it records are the verdict's `timing.profile`, feedback on where the
time goes. It never decides a verdict.

"Stable": the distribution-free 95% confidence interval of the median (two order statistics
around it) lies within `stable_within` of the median on either side. A GPU kernel whose runs
agree to a percent stops after its `min_runs`; a noisy one runs on until `budget_ms` of timed
runs (or `max_runs`), so every candidate's timing is bounded and none is cut short while its
median still moves. The reference, the baselines and the candidate all stop by this one rule.

`time_call` must see every piece of work `fn` starts, on any stream or queue: the last timestamp
is taken only after a device-wide synchronisation. Backends:

- sim: the host clock around the call; recorded, never reported as performance.
- cuda: CUDA events on the current stream, checked against a device-wide synchronisation (work
  hidden on another stream is charged), an L2 flush between runs (writing a buffer twice the L2's
  size), TF32 off for float32. See cuda_timing.py.
- metal: the host clock around the call, bracketed by device-wide synchronisation of both PyTorch's
  MPS stream and metalrt's queue, and a system-level-cache flush between runs. Coarse but honest;
  GPU timestamps come with the Metal backend (issue 6).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..verdict import Timing


class DeviceTiming:
    """How one backend synchronises, flushes and times. Subclass per backend."""

    backend = "none"
    method = "undefined"
    is_performance = False

    def synchronize(self) -> None:
        """Wait for every piece of work submitted to the device, on every stream and queue."""

    def flush_cache(self) -> None:
        """Evict the device caches, so that no run inherits the previous run's warm cache."""

    def time_call(self, fn: Callable[[], Any]) -> float:
        """Milliseconds of one call of `fn`, from submission to completion of all its work."""
        self.synchronize()
        start = time.perf_counter_ns()
        fn()
        self.synchronize()
        return (time.perf_counter_ns() - start) / 1e6


def profile_call(fn: Callable[[], Any], synchronize: Callable[[], None]) -> tuple[Any, list[dict[str, Any]]]:
    """One call of `fn` under `metalrt.profile()`: its result and the profile's summary (per
    kernel: count, total_ms, mean_ms and the clock: CUDA events, Metal command buffers, host wall
    time on the sim), the most expensive first. Feedback for the next attempt, never part of a verdict: the call is not one
    of the timed runs (the profile's events would sit inside the timed interval). Without
    metalrt, or with a profile already active (candidate code left one open), the list is empty."""
    try:
        import metalrt

        session = metalrt.profile().__enter__()
    except (ImportError, RuntimeError):
        result = fn()
        synchronize()
        return result, []
    try:
        result = fn()
        synchronize()
    finally:
        session.__exit__(None, None, None)
    return result, session.summary()


def _metalrt_synchronize(backend: str) -> Callable[[], None]:
    """metalrt's wait for every kernel it launched on `backend` (a no-op without metalrt)."""
    try:
        import metalrt
    except ImportError:
        return lambda: None
    return lambda: metalrt.synchronize(backend)


class SimTiming(DeviceTiming):
    backend = "sim"
    method = "cpu-clock (sim: not a performance measure)"
    is_performance = False

    def __init__(self) -> None:
        self._sync = _metalrt_synchronize("sim")

    def synchronize(self) -> None:
        self._sync()


class CpuTiming(DeviceTiming):
    """Plain PyTorch on the CPU: synchronous, so the host clock is exact."""

    backend = "cpu"
    method = "cpu-clock"
    is_performance = True


def CudaTiming() -> DeviceTiming:  # noqa: N802 - a factory in the place of a class
    """CUDA's timing lives in its own module (cuda_timing.py), imported when first needed."""
    from .cuda_timing import CudaTiming as cls

    return cls()


class MetalTiming(DeviceTiming):
    backend = "metal"
    method = "host-clock+device-sync (MPS stream and metalrt queue), SLC flushed"
    is_performance = True

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._sync_metalrt = _metalrt_synchronize("metal")
        # Apple's system-level cache is up to 96 MiB on M-series Max chips; write 256 MiB.
        self._flush_buffer = torch.empty(64 << 20, dtype=torch.float32, device="mps")

    def synchronize(self) -> None:
        self._torch.mps.synchronize()
        self._sync_metalrt()

    def flush_cache(self) -> None:
        self._flush_buffer.fill_(1.0)
        self._torch.mps.synchronize()


_TIMINGS: dict[str, type[DeviceTiming]] = {
    "sim": SimTiming,
    "cpu": CpuTiming,
    "cuda": CudaTiming,
    "metal": MetalTiming,
}


def register_timing(backend: str, cls: type[DeviceTiming]) -> None:
    """Install (or replace) the timing of a backend."""
    _TIMINGS[backend] = cls


def timing_for(backend: str) -> DeviceTiming:
    if backend not in _TIMINGS:
        raise ValueError(f"no timing method for backend {backend!r}; known: {', '.join(_TIMINGS)}")
    return _TIMINGS[backend]()


def summarize(
    times_ms: list[float], *, subject: str, timing: DeviceTiming, warmup: int, profile=None
) -> Timing:
    ordered = sorted(times_ms)
    if len(ordered) >= 4:
        q = statistics.quantiles(ordered, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = ordered[-1] - ordered[0]
    return Timing(
        subject=subject,
        method=timing.method,
        is_performance=timing.is_performance,
        median_ms=statistics.median(ordered),
        min_ms=ordered[0],
        max_ms=ordered[-1],
        iqr_ms=iqr,
        runs=len(ordered),
        warmup=warmup,
        profile=profile or [],
    )


def median_is_stable(times_ms: list[float], within: float) -> bool:
    """True when the 95% confidence interval of the median of `times_ms` (order statistics, no
    assumption about the distribution) is within `within` times the median of it on each side."""
    n = len(times_ms)
    if within <= 0 or n < 6:
        return False
    ordered = sorted(times_ms)
    spread = 1.96 * math.sqrt(n)
    low = max(1, math.floor((n - spread) / 2))  # 1-based ranks
    high = min(n, math.ceil(1 + (n + spread) / 2))
    median = statistics.median(ordered)
    return median - ordered[low - 1] <= within * median and ordered[high - 1] - median <= within * median


def measure(
    timing: DeviceTiming,
    fn: Callable[[], Any],
    *,
    subject: str,
    refill: Callable[[], None] | None = None,
    warmup: int = 3,
    min_runs: int = 10,
    max_runs: int = 100,
    budget_ms: float = 2000.0,
    stable_within: float = 0.0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> tuple[Timing, list[float]]:
    """Time `fn` by the loop in the module docstring; returns the summary and every run's time."""
    for _ in range(warmup):
        if refill is not None:
            refill()
        fn()
    timing.synchronize()
    times: list[float] = []
    started = clock()
    while len(times) < max_runs:
        if refill is not None:
            refill()
        timing.flush_cache()
        times.append(timing.time_call(fn))
        if len(times) < min_runs:
            continue
        if (clock() - started) / 1e6 >= budget_ms or median_is_stable(times, stable_within):
            break
    return summarize(times, subject=subject, timing=timing, warmup=warmup, ), times
