"""Timing with the backend's own clock: GPU timestamps on Metal, CUDA events on CUDA, and on
the sim a CPU clock (which the timer says: sim timings are never a performance measure)."""

from __future__ import annotations

from typing import Any

from . import _registry

__all__ = ["Timer", "timer"]


class Timer:
    """Times the work submitted inside a ``with`` block on one backend's queue.

    >>> with metalrt.timer() as t:
    ...     lib.relu(x, y, n, threads=n)
    >>> t.ms, t.method   # (0.042, 'metal-gpu-timestamps')

    ``ms`` waits for that work to finish the first time it is read.
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        self._state = "new"
        self._ms: float | None = None

    def __enter__(self) -> "Timer":
        if self._state != "new":
            raise RuntimeError("a metalrt timer measures one block; create a new one with metalrt.timer()")
        self._native.start()
        self._state = "running"
        return self

    def __exit__(self, *exc: object) -> None:
        self._native.stop()
        self._state = "stopped"

    @property
    def ms(self) -> float:
        """Elapsed milliseconds of the timed block."""
        if self._state != "stopped":
            raise RuntimeError("the timer has not stopped yet: read .ms after the `with` block")
        if self._ms is None:
            self._ms = float(self._native.elapsed_ms())
        return self._ms

    @property
    def method(self) -> str:
        """How it measured: "metal-gpu-timestamps", "cuda-events", "cpu-clock (sim: ...)"..."""
        return self._native.method

    def __repr__(self) -> str:
        value = f"{self._ms:.4f} ms" if self._ms is not None else self._state
        return f"<metalrt.Timer {value} via {self.method}>"


def timer(backend: str | None = None) -> Timer:
    """A timer for ``backend``'s queue (default: the default device's)."""
    return Timer(_registry.driver(backend).timer())
