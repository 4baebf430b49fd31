"""Facts about this machine that decide which CUDA tests apply (imported by the test modules)."""

from __future__ import annotations

import ctypes


def driver_present() -> bool:
    """True where libcuda.so.1 loads: an NVIDIA driver is installed."""
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False
