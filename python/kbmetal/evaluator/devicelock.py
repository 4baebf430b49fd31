"""One GPU, several judges: a reader-writer lock on the device, so that nothing of ours runs on it
while a candidate (or a baseline) is timed.

Judges on one machine share its GPU. Their references, comparisons and candidates' correctness
trials may overlap one another (they only cost each other time), but a timed run that shares the
GPU with any of them measures the other's work too, and a side-work check that compares the
candidate's GPU time with its host time counts work it did not cause. So each judge holds the
lock shared (LOCK_SH) around every stage that puts work of its own or its candidate's on the GPU,
and exclusive (LOCK_EX) around timing: a timed run waits until no other judge's stage is running,
and holds the others back until it is done.

The lock is flock(2) on a file named per backend (or the path the options give), so it holds
across processes, is released by the kernel when a judge dies, and costs microseconds. Each
acquisition opens the file anew: flock locks belong to an open file, and converting one from
shared to exclusive is not atomic. Inside one thread the lock nests: shared within shared or
within exclusive is free; exclusive within shared would wait for itself, and raises instead.

Not covered: processes that do not take the lock (other programs, a candidate's own threads after
its stage), and a spare candidate process making its device ready (a context and one small matmul,
at most once per candidate).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator


def default_path(backend: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"kbmetal-device-{backend}.lock")


class DeviceLock:
    """Shared for stages that use the device, exclusive for timing. `path` None: no lock."""

    def __init__(self, path: str | None):
        self.path = path
        self._held = threading.local()  # this thread's: (mode, depth)

    def _state(self) -> tuple[int | None, int]:
        return getattr(self._held, "mode", None), getattr(self._held, "depth", 0)

    @contextlib.contextmanager
    def _hold(self, mode: int) -> Iterator[None]:
        held, depth = self._state()
        if self.path is None or held == fcntl.LOCK_EX or held == mode:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        if held == fcntl.LOCK_SH:
            raise RuntimeError("the device lock is held shared by this thread: taking it exclusive would wait forever")
        with open(self.path, "a") as f:
            fcntl.flock(f, mode)
            self._held.mode, self._held.depth = mode, 1
            try:
                yield
            finally:
                self._held.mode, self._held.depth = None, 0
                fcntl.flock(f, fcntl.LOCK_UN)

    def shared(self) -> contextlib.AbstractContextManager[None]:
        """Around work on the device that may overlap other such work, never a timed run."""
        return self._hold(fcntl.LOCK_SH)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Around timing: the device runs nothing else of ours meanwhile."""
        return self._hold(fcntl.LOCK_EX)
