"""SimDriver: the sim backend's driver (the protocol in docs/internals.md).

build() runs the sim's pipeline:
  1. metalrt._C.parse_msl: preprocess, find the kernels and their signatures;
  2. frontend.translate: check MSL's rules, translate to C++ against the shim headers;
  3. compiler: build a shared object, cached on disk by content (metalrt.cache.DiskCache), so a
     new process loads it without compiling;
  4. metalrt._C.sim_load: the executor loads it and returns the native Library.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from ..cache import DiskCache
from ..errors import BackendUnavailable
from . import compiler, frontend

__all__ = ["SimDriver"]

FILENAME = "kernel.metal"


def _shim_digest() -> str:
    """A hash of the shim headers (and the sanitizer ignore list beside them): a change to any of
    them must never reuse old libraries."""
    h = hashlib.sha256()
    for path in sorted(compiler.INCLUDE_DIR.glob("*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


class SimDriver:
    name = "sim"

    def __init__(self) -> None:
        self._cache = DiskCache("sim", suffix=".so")
        self._id: str | None = None
        self._lock = threading.Lock()

    # ---- the driver protocol ------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        try:
            from .. import _C
        except ImportError as e:
            return f"[metalrt.sim] the native extension metalrt._C did not load: {e}"
        if not hasattr(_C, "sim_load"):
            return "[metalrt.sim] this build of metalrt._C has no sim executor"
        return compiler.unavailable_reason()

    def device(self):
        from .. import _C

        return _C.sim_device()

    def compiler_id(self) -> str:
        """The host compiler, its flags, the shim headers and the executor ABI: everything
        besides the source that decides what a kernel library contains."""
        if self._id is None:
            from .. import _C

            with self._lock:
                host = self._host()
                flags = " ".join(host.base_flags())
                self._id = (f"{host.id} flags[{flags}] shim[{_shim_digest()}] "
                            f"abi[{_C.sim_abi_version()}]")
        return self._id

    def build(self, source: str, options):
        from .. import _C

        parsed = _C.parse_msl(source, dict(options.defines) or None, FILENAME)
        translation = frontend.translate(parsed, constants=dict(options.constants),
                                         filename=FILENAME, original=source)
        key = DiskCache.key(backend="sim", target=self.device().target,
                            compiler_id=self.compiler_id(), options=options,
                            source=translation.cpp)
        path = self._cache.get_or_create(key, lambda tmp: self._compile(translation, tmp))
        return _C.sim_load(str(path), parsed)

    def synchronize(self) -> None:
        """Launches on the sim are synchronous: nothing is ever in flight."""

    def timer(self):
        from .. import _C

        return _C.sim_timer()

    # ---- helpers ------------------------------------------------------------------------------

    def _host(self) -> compiler.HostCompiler:
        try:
            return compiler.find()
        except compiler.CompilerNotFound as e:
            raise BackendUnavailable(str(e)) from None

    def _compile(self, translation: frontend.Translation, output: Path) -> None:
        host = self._host()
        # Recursion the front end suspects from names alone is confirmed on the compiled call
        # graph (overloads and template instantiations are distinct there) before rejecting.
        if translation.recursion_suspects and compiler.call_cycles(host, translation.cpp):
            raise translation.recursion_error(translation.recursion_suspects[0])
        ok, log = compiler.compile_library(host, translation.cpp, output)
        if not ok:
            raise translation.compile_error(log)
