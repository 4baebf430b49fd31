"""FLOPs, bytes and the roofline: the least time any kernel could take for a reference.

A kernel must read its inputs and parameters and write its outputs at least once, and must do the
reference's arithmetic, so on a device with peak bandwidth B and peak compute F it needs at least
max(bytes / B, flops / F). Counting is done on fake tensors (kbmetal.problems.tracing describes
exactly what is counted), so the default sizes cost nothing to estimate.

Only the byte count is a strict lower bound for every correct kernel: FLOPs are the reference's,
and a kernel may legitimately do fewer (diag(d) @ B need not multiply by zeros, tril(A) @ B can
skip half of A), while the per-element estimate for ops other than matmuls is approximate. So the
evaluator's speed-of-light guard uses `lower_bound_seconds`, the compulsory bytes at peak
bandwidth, which no correct kernel can beat; `seconds` is the roofline, for reports and sizing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .tracing import Trace, trace

if TYPE_CHECKING:
    from .instance import ProblemInstance


@dataclass(frozen=True)
class Device:
    name: str
    bandwidth: float  # bytes per second
    fp32_flops: float  # FLOP per second, fp32, no matrix units


DEVICES = {
    "m4max": Device("Apple M4 Max", bandwidth=546e9, fp32_flops=17e12),
    "h100": Device("NVIDIA H100 SXM (fp32, no tensor cores)", bandwidth=3.35e12, fp32_flops=67e12),
}


@dataclass(frozen=True)
class Roofline:
    """A reference's counted work; `seconds()` turns it into a time on a device."""

    trace: Trace

    @property
    def flops(self) -> int:
        return self.trace.flops

    @property
    def bytes(self) -> int:
        return self.trace.bytes

    def seconds(self, device: str | Device) -> float:
        """The roofline time: the larger of the memory time and the compute time."""
        d = DEVICES[device] if isinstance(device, str) else device
        return max(self.bytes / d.bandwidth, self.flops / d.fp32_flops)

    def lower_bound_seconds(self, device: str | Device) -> float:
        """Compulsory bytes at peak bandwidth: a bound no correct kernel can beat. FLOPs are left
        out on purpose (see the module docstring)."""
        d = DEVICES[device] if isinstance(device, str) else device
        return self.bytes / d.bandwidth

    def bound(self, device: str | Device) -> str:
        """"memory" or "compute": which side of the roofline the reference sits on."""
        d = DEVICES[device] if isinstance(device, str) else device
        return "memory" if self.bytes / d.bandwidth >= self.flops / d.fp32_flops else "compute"


def estimate(instance: ProblemInstance) -> Roofline:
    """Count the reference of `instance` at its sizes and dtype, on fake tensors.

    Raises what tracing raises when the reference cannot run on fake tensors (see
    kbmetal.problems.tracing.trace).
    """
    return Roofline(trace(instance))
