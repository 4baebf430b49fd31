"""metalrt.profile(): the GPU time of every kernel launch made inside a ``with`` block.

    with metalrt.profile() as prof:
        model(x)
    prof.records    # one dict per launch, in launch order
    prof.summary()  # per kernel: count, total and mean, the most expensive first

The profile is process-wide: launches from any thread, on any backend, are recorded while it is
active, and profiles do not nest. Each launch is timed by the clock its backend offers, named in
its record's ``clock``:

``cuda-event``            a pair of CUDA events on the launch's stream around the launch; the
                          launch stays asynchronous, and the events are read when the block ends
``metal-command-buffer``  GPUEndTime - GPUStartTime of the launch's command buffer
``host-wall``             wall time around the launch on the host (the sim runs a launch to
                          completion on the CPU: its times are not GPU performance figures)

When no profile is active a launch pays one test of a flag.
"""

from __future__ import annotations

from typing import Any

from . import _C


class Profile:
    """The launches of one ``with metalrt.profile()`` block. ``records`` is filled when the block
    ends: dicts with ``kernel``, ``backend``, ``threads`` (``[x, y, z]``, or None for a launch
    given ``groups=``), ``groups``, ``group_size``, ``gpu_ms`` and ``clock``."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __enter__(self) -> Profile:
        _C._profile_start()  # raises RuntimeError when a profile is already active
        self.records = []
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.records = _C._profile_stop()

    def summary(self) -> list[dict[str, Any]]:
        """Per kernel (and backend and clock): ``count``, ``total_ms`` and ``mean_ms``, sorted by
        total time, largest first; kernels with equal totals keep the order of their first launch."""
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in self.records:
            key = (r["kernel"], r["backend"], r["clock"])
            row = rows.get(key)
            if row is None:
                row = rows[key] = {"kernel": r["kernel"], "backend": r["backend"], "count": 0, "total_ms": 0.0,
                                   "mean_ms": 0.0, "clock": r["clock"]}
            row["count"] += 1
            row["total_ms"] += r["gpu_ms"]
        for row in rows.values():
            row["mean_ms"] = row["total_ms"] / row["count"]
        return sorted(rows.values(), key=lambda row: -row["total_ms"])

    def __repr__(self) -> str:
        return f"<metalrt.Profile: {len(self.records)} launches>"


def profile() -> Profile:
    """A context manager that records every kernel launch made while it is active (see the
    module's docstring): ``with metalrt.profile() as prof: ...``, then ``prof.records`` and
    ``prof.summary()``. Raises RuntimeError if a profile is already active."""
    return Profile()
