"""metalrt: compile GPU kernels from source and launch them on PyTorch tensors.

    import metalrt
    lib = metalrt.compile(MSL_SOURCE)              # Metal on a Mac, CUDA on NVIDIA, else the sim
    lib.relu(x, y, x.numel(), threads=x.numel())   # tensors bind zero-copy; numbers are converted

Backends: ``metal`` (Apple GPUs), ``cuda`` (NVIDIA, through NVRTC) and ``sim`` (a CPU simulator
of the Metal Shading Language that runs anywhere and reports what a GPU would hide). The same
launch vocabulary and the same argument checks serve all three.

``with metalrt.profile() as prof:`` records the GPU time of every launch made inside the block
(``prof.records``, ``prof.summary()``; see metalrt.profiling).

Importing metalrt does not import torch.
"""

from __future__ import annotations

from . import _C
from . import _registry
from ._C import Kernel
from ._library import CompileOptions, Library, clear_cache, compile
from .cache import cache_dir
from .device import Device
from .errors import ArgumentError, BackendUnavailable, CompileError, KernelNotFound, LaunchError, MetalrtError
from .profiling import Profile, profile
from .timing import Timer, timer

__version__ = getattr(_C, "__version__", "0.0.0")

__all__ = [
    "ArgumentError",
    "BackendUnavailable",
    "CompileError",
    "CompileOptions",
    "Device",
    "Kernel",
    "KernelNotFound",
    "LaunchError",
    "Library",
    "MetalrtError",
    "Profile",
    "Timer",
    "backends",
    "cache_dir",
    "clear_cache",
    "compile",
    "device",
    "profile",
    "synchronize",
    "timer",
]


def backends() -> list[str]:
    """The backends usable on this machine, in default-preference order (metal, cuda, sim).
    ``metalrt._registry.unavailable_reason(name)`` says why one is missing."""
    return _registry.available()


def device(backend: str | None = None) -> Device:
    """The device of ``backend``, or the default device: Metal on a Mac, CUDA on an NVIDIA
    machine, else the sim (``$METALRT_BACKEND`` overrides the choice). Raises BackendUnavailable,
    with the driver's reason, when the named backend cannot run here."""
    return _registry.device(backend)


def synchronize(backend: str | None = None) -> None:
    """Waits until every kernel launched on ``backend`` (default: the default device's) has
    finished. CUDA launches are asynchronous (on PyTorch's current stream); a sim or Metal launch
    has finished when it returns. On Metal this also drains PyTorch's MPS stream."""
    _registry.driver(backend).synchronize()
