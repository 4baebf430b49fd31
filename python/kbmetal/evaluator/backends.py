"""Which backend judges a candidate, and what that means for devices, dtypes and timings.

The backends are metalrt's (`sim`, `metal`, `cuda`); the best one present is chosen as metalrt
chooses it (Metal on a Mac, CUDA on an NVIDIA machine, else the sim). Each maps to the torch
device its tensors live on, and says whether its timings are performance (the sim's are not).
"""

from __future__ import annotations

from dataclasses import dataclass

KNOWN = ("metal", "cuda", "sim")
TORCH_DEVICE = {"sim": "cpu", "cuda": "cuda", "metal": "mps"}
# Peak bandwidth for the speed-of-light check when the runtime does not know its device's: the
# fastest device of each kind (M2/M3 Ultra, B200), so the bound stays a true lower bound and a
# flag is never raised wrongly, at the cost of missing some cheats on slower devices.
_PEAK_BANDWIDTH_GBS = {"metal": 800.0, "cuda": 8000.0}


class BackendError(Exception):
    """A backend was asked for that does not exist or cannot run here."""


@dataclass(frozen=True)
class Backend:
    name: str
    torch_device: str
    device_name: str
    is_performance: bool
    peak_bandwidth_gbs: float | None  # None when unknown: the speed-of-light check is skipped
    peak_tflops: float | None = None

    @property
    def exact_device(self) -> str:
        """Where the judge draws inputs and computes the float64 reference: on the device itself
        when it has float64 (CUDA: seconds of CPU work become milliseconds), else on the CPU
        (Metal has no float64; the sim's device is the CPU)."""
        return "cuda" if self.torch_device == "cuda" else "cpu"

    @property
    def default_sizes(self) -> str:
        """The sim runs the `small` preset; a GPU the problem's own sizes."""
        return "small" if self.name == "sim" else "default"


def _metalrt():
    try:
        import metalrt
    except ImportError as exc:
        raise BackendError(
            f"the metalrt runtime cannot be imported ({exc}); install kbmetal with "
            "`pip install .`, or build it in a checkout with `scripts/dev-build`"
        ) from None
    return metalrt


def available() -> list[str]:
    """Backends usable here, best first."""
    metalrt = _metalrt()
    names = list(metalrt.backends())
    return [name for name in KNOWN if name in names]


def best() -> str:
    names = available()
    if not names:
        raise BackendError("metalrt reports no usable backend (not even the sim)")
    return names[0]


def resolve(name: str | None) -> Backend:
    """The backend called `name` (None: the best present), or a BackendError with the fix."""
    if name is None:
        name = best()
    if name not in KNOWN:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(KNOWN)}")
    metalrt = _metalrt()
    usable = list(metalrt.backends())
    if name not in usable:
        why = ""
        registry = getattr(metalrt, "_registry", None)
        reason = getattr(registry, "unavailable_reason", None)
        if callable(reason):
            why = f": {reason(name)}"
        raise BackendError(
            f"backend {name!r} is not usable on this machine{why} (usable here: {', '.join(usable) or 'none'})"
        )
    device = metalrt.device(name)
    bandwidth = float(getattr(device, "peak_bandwidth_gbs", 0.0) or 0.0) or _PEAK_BANDWIDTH_GBS.get(name)
    return Backend(
        name=name,
        torch_device=TORCH_DEVICE[name],
        device_name=str(getattr(device, "name", name)),
        is_performance=name != "sim",
        peak_bandwidth_gbs=bandwidth if name != "sim" else None,
        peak_tflops=None,
    )
