"""Counting the candidate's own kernel launches on the target backend.

Every forward is run inside `counter.counting()`; a forward that launched nothing did the work
some other way (PyTorch, NumPy, a cached result) and fails the "no custom kernel" guard.

- metalrt kernels (every backend): metalrt's native layer counts launches
  (`metalrt._C.launch_count()`). The worker takes its own reference to the function before the
  candidate is imported, so replacing the module attribute changes nothing for the harness.
- CUDA kernels that do not go through metalrt (KernelBench's `load_inline`, Triton, CuPy): the
  PyTorch profiler records every kernel the GPU ran; those not launched inside one of PyTorch's own
  ops are the candidate's. The profiler's first use costs seconds (CUPTI: 4.4 s in a fresh
  process on the H100 machine, 6 s with six starting at once), so only a candidate whose source
  names another way to launch (`needs_profiler`) pays it. The scan fails safe: a candidate that
  hides such a path from it is counted by metalrt alone, and launching nothing metalrt sees, it
  fails the "no custom kernel" guard; it can never pass because of the scan.

A backend can install its own counter with `register_launch_counter`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator


class Count:
    """The number of launches of one block; None when they cannot be counted here."""

    def __init__(self) -> None:
        self.value: int | None = None


def _metalrt_count() -> Callable[[], int] | None:
    try:
        import metalrt
    except ImportError:
        return None
    native = getattr(getattr(metalrt, "_C", None), "launch_count", None)
    return native if callable(native) else None


class LaunchCounter:
    """metalrt's native count of launches."""

    # whether counting costs nothing, so that the timed runs can be counted too
    cheap = True

    def __init__(self) -> None:
        self._read = _metalrt_count()
        self.source = "metalrt" if self._read is not None else "none"

    @property
    def available(self) -> bool:
        return self._read is not None

    def read(self) -> int | None:
        return int(self._read()) if self._read is not None else None

    @contextlib.contextmanager
    def counting(self) -> Iterator[Count]:
        count = Count()
        before = self.read()
        try:
            yield count
        finally:
            after = self.read()
            count.value = None if before is None or after is None else after - before


# Ways to launch a GPU kernel that metalrt does not count: modules imported, and PyTorch's own
# extension and custom-op entry points named anywhere.
OTHER_LAUNCH_PATHS = re.compile(
    r"^\s*(import|from)\s+(triton|cupy|numba|pycuda|cuda|ctypes|cffi|warp|tilelang|jax)\b"
    r"|\b(load_inline|cpp_extension|torch\.library|torch\.ops|load_library)\b",
    re.MULTILINE,
)


def needs_profiler(source: str) -> bool:
    """Whether a candidate's source names a way to launch kernels other than metalrt."""
    return OTHER_LAUNCH_PATHS.search(source) is not None


class CudaLaunchCounter(LaunchCounter):
    """metalrt's count; with `use_profiler()`, plus the CUDA kernels no PyTorch op launched."""

    def __init__(self) -> None:
        super().__init__()
        self.profiled = False

    @property
    def cheap(self) -> bool:  # the profiler would distort the timed runs: they are not counted then
        return not self.profiled

    @property
    def available(self) -> bool:
        return True

    def use_profiler(self) -> None:
        """Count through the profiler from now on (see the module docstring for the cost)."""
        self.profiled = True
        self.source = "metalrt+cuda-profiler"

    @contextlib.contextmanager
    def counting(self) -> Iterator[Count]:
        if not self.profiled:
            with super().counting() as count:
                yield count
            return
        from torch.profiler import ProfilerActivity, profile

        count = Count()
        with super().counting() as metalrt_count:
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                try:
                    yield count
                finally:
                    import torch

                    torch.cuda.synchronize()
        # metalrt's own CUDA launches are also launches outside torch ops: the larger count covers
        # both without counting them twice
        count.value = max(_kernels_outside_torch_ops(prof), metalrt_count.value or 0)


def _kernels_outside_torch_ops(prof) -> int:
    """Kernels whose launch is not nested in an aten op (the candidate's own launches)."""
    from torch.autograd import DeviceType

    foreign = 0
    for event in prof.events():
        if event.device_type != DeviceType.CPU or not event.name.lower().startswith(
            ("cudalaunch", "culaunch")
        ):
            continue
        parent, inside_op = event.cpu_parent, False
        while parent is not None:
            if parent.name.startswith("aten::"):
                inside_op = True
                break
            parent = parent.cpu_parent
        if not inside_op:
            foreign += 1
    return foreign


_COUNTERS: dict[str, Callable[[], LaunchCounter]] = {"cuda": CudaLaunchCounter}


def register_launch_counter(backend: str, factory: Callable[[], LaunchCounter]) -> None:
    _COUNTERS[backend] = factory


def counter_for(backend: str) -> LaunchCounter:
    return _COUNTERS.get(backend, LaunchCounter)()
