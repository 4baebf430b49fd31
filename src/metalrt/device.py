"""What a backend reports about the device it runs on."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Device"]


@dataclass(frozen=True)
class Device:
    """A device of one backend: ``metalrt.device()`` returns the default one.

    ``max_threads_per_group`` and ``simd_width`` are what launches are checked against;
    ``peak_bandwidth_gbs`` is 0 when unknown (the sim). On the sim, ``name`` says that it is a
    CPU simulator: its timings are never a performance measure.
    """

    backend: str
    name: str
    target: str = ""
    index: int = 0
    max_threads_per_group: int = 1024
    simd_width: int = 32
    max_threadgroup_memory: int = 32768
    memory_bytes: int = 0
    unified_memory: bool = False
    peak_bandwidth_gbs: float = 0.0

    @classmethod
    def from_info(cls, info) -> "Device":
        """Builds a Device from a native ``_C.DeviceInfo`` (or any object with the same fields)."""
        return cls(**{f.name: getattr(info, f.name) for f in fields(cls) if hasattr(info, f.name)})

    def __str__(self) -> str:
        return f"{self.name} ({self.backend}:{self.index})"
