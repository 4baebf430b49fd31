"""The Metal driver: metalrt on Apple GPUs, through the Objective-C++ backend in csrc/metal.

Kernels run on metalrt's own MTLCommandQueue. PyTorch's MPS tensors bind without a copy (the
storage's data pointer is the MTLBuffer); because two queues are not ordered with each other, a
launch that binds an MPS tensor first finishes PyTorch's queued MPS work (torch.mps.synchronize)
and then waits for its own command buffer, so each side sees the other's writes. docs/mac.md
explains the choice and its cost.

Environment:
  METALRT_METAL_DEVICE   a device by (part of) its name or its number; default: the system's
  METALRT_METAL_TIMER    auto | counters | command-buffer (how metalrt.timer() measures)
  METALRT_METAL_ARCHIVE  0 keeps compiled pipelines out of the on-disk binary archives
"""

from __future__ import annotations

import os
import sys

from . import _C
from .device import Device
from .errors import BackendUnavailable

_metal = _C.metal


def _drain_pytorch_mps() -> None:
    """Finishes the work PyTorch has queued on its MPS stream. Runs before every launch that binds
    an MPS tensor, so it stays cheap: nothing unless the program has imported torch (metalrt never
    imports it for a user who does not)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.backends.mps.is_available():
        torch.mps.synchronize()


class MetalDriver:
    name = "metal"

    def __init__(self) -> None:
        self._hooked = False

    def unavailable_reason(self) -> str | None:
        if sys.platform != "darwin":
            return f"Metal needs macOS on a Mac (this is {sys.platform}); use the 'sim' backend"
        if not _metal.HAS_DEVICE_BACKEND:
            return ("this metalrt was built without the Metal backend; reinstall it on macOS with "
                    "the Xcode command line tools present: pip install --force-reinstall kbmetal")
        return _metal.unavailable_reason() or None

    def _ready(self):
        reason = self.unavailable_reason()
        if reason:
            raise BackendUnavailable(f"[metalrt.metal] {reason}")
        if not self._hooked:
            _metal.set_external_sync(_drain_pytorch_mps)
            self._hooked = True
        return _metal

    def device(self) -> Device:
        return Device.from_info(self._ready().device_info())

    def compiler_id(self) -> str:
        # Metal's compiler ships with macOS: the OS build and the GPU name it.
        return self._ready().identity()["compiler_id"]

    def build(self, source: str, options):
        metal = self._ready()
        archive_dir = ""
        if os.environ.get("METALRT_METAL_ARCHIVE", "1") not in ("0", "off", "false"):
            from .cache import cache_dir

            archive_dir = str(cache_dir())
        return metal.build(
            source,
            defines=list(options.defines or ()),
            constants=list(options.constants or ()),
            math=options.math,
            cache_dir=archive_dir,
        )

    def synchronize(self) -> None:
        """Waits for metalrt's launches and for PyTorch's MPS stream."""
        self._ready().synchronize()
        _drain_pytorch_mps()

    def timer(self):
        return self._ready().timer()

    def stats(self) -> dict:
        """What the pipeline caches did in this process (compiles, archive hits and rebuilds)."""
        return self._ready().stats()
