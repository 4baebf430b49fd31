"""The runtime's exceptions. Every backend raises these (native errors are translated by
``metalrt._C``), so ``except metalrt.CompileError`` works whatever compiled the kernel."""

from __future__ import annotations

__all__ = ["MetalrtError", "CompileError", "ArgumentError", "LaunchError", "BackendUnavailable", "KernelNotFound"]


class MetalrtError(Exception):
    """Base class of every error metalrt raises on purpose."""


class CompileError(MetalrtError):
    """A kernel source did not compile.

    ``str(error)`` is a one-paragraph summary (the first error and its line); ``log`` is the
    compiler's full output, with line numbers that point into the user's source; ``line`` is the
    first error's line in that source (0 when unknown).
    """

    def __init__(self, message: str, log: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.log = log
        self.line = line

    def __reduce__(self):  # keep log and line across pickling (worker processes)
        return (type(self), (str(self), self.log, self.line))


class ArgumentError(MetalrtError, TypeError):
    """A launch argument does not fit the kernel's parameter: wrong count, dtype, device,
    contiguity, alignment or a scalar out of range. The message names the kernel and the
    parameter."""


class LaunchError(MetalrtError, RuntimeError):
    """A launch could not run or failed while running: limits (threads per group, threadgroup
    memory) and everything the sim detects (a divergent barrier, an out-of-bounds access, a race
    on threadgroup memory...)."""


class BackendUnavailable(MetalrtError, RuntimeError):
    """The backend cannot be used here; the message says why and what would fix it."""


class KernelNotFound(MetalrtError, AttributeError, KeyError):
    """``lib.NAME`` / ``lib["NAME"]`` for a name that is not a kernel of the library; the
    message lists the kernels that exist. It is both an AttributeError and a KeyError, so
    ``hasattr`` and ``in``-style checks behave."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""
