"""compile() and Library: the in-process face of compiled kernels.

``compile()`` keys its cache on (backend, device, source, options): the same call on the same
device returns the very same Library object without compiling, so solutions may call it at
import time or even inside ``forward``. The disk cache behind it (across processes) belongs to
each driver, which knows what a compiled artifact is on its backend (see metalrt.cache).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from . import _registry
from .errors import KernelNotFound

__all__ = ["CompileOptions", "Library", "compile"]

MATH_MODES = ("safe", "fast", "relaxed")


@dataclass(frozen=True)
class CompileOptions:
    """Everything besides the source that changes what a backend compiles (and so enters every
    cache key). Built by ``compile()`` in a canonical form: sorted tuples of pairs."""

    defines: tuple[tuple[str, str], ...] = ()
    """Preprocessor macros as (name, replacement text); like -DNAME=VALUE."""
    constants: tuple[tuple[str | int, Any], ...] = ()
    """MSL function constants as (name or index, value): bool, int, float, or a tuple (vector)."""
    math: str = "safe"
    """"safe" (IEEE semantics), "fast" (Metal fast math / CUDA --use_fast_math), "relaxed"."""
    name_expressions: tuple[str, ...] = ()
    """CUDA: template instantiations to compile, e.g. ("scale<float>",)."""


def _define_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"defines[{name!r}] must be a str, int, float, bool or None, got {type(value).__name__}")


def _constant_value(key: Any, value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float)) for v in value):
        return tuple(value)
    raise TypeError(
        f"constants[{key!r}] must be a bool, int, float or a tuple of them (a vector), got {type(value).__name__}"
    )


def _options(defines, constants, math, name_expressions) -> CompileOptions:
    if math not in MATH_MODES:
        raise ValueError(f"math must be one of {', '.join(map(repr, MATH_MODES))}, got {math!r}")
    d: tuple[tuple[str, str], ...] = ()
    if defines:
        if not isinstance(defines, dict):
            raise TypeError(f"defines must be a dict {{name: value}}, got {type(defines).__name__}")
        for name in defines:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"defines: {name!r} is not a valid macro name")
        d = tuple(sorted((name, _define_text(name, v)) for name, v in defines.items()))
    c: tuple = ()
    if constants:
        if not isinstance(constants, dict):
            raise TypeError(f"constants must be a dict {{name or index: value}}, got {type(constants).__name__}")
        for key in constants:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"constants: keys are function-constant names or indices, got {key!r}")
        # indices first, then names: a fixed order whatever order the dict was written in
        pairs = ((k, _constant_value(k, v)) for k, v in constants.items())
        c = tuple(sorted(pairs, key=lambda kv: (isinstance(kv[0], str), str(kv[0]))))
    n: tuple[str, ...] = ()
    if name_expressions:
        if isinstance(name_expressions, str):
            name_expressions = [name_expressions]
        n = tuple(sorted(set(name_expressions)))
    return CompileOptions(defines=d, constants=c, math=math, name_expressions=n)


class Library:
    """A compiled source. ``lib.NAME`` and ``lib["NAME"]`` are its kernels (``metalrt.Kernel``);
    ``dir(lib)`` lists them. A name that is not a kernel raises an error listing the ones that
    exist. Kernel names that clash with the attributes below are reached with ``lib["NAME"]``."""

    def __init__(self, native: Any, *, backend: str, device: Any, source: str, options: CompileOptions) -> None:
        self._native = native
        self._names: tuple[str, ...] = tuple(native.kernel_names())
        self._kernels: dict[str, Any] = {}
        self.backend = backend
        self.device = device
        self.source = source
        self.options = options

    def kernel_names(self) -> list[str]:
        """The host names of the kernels, in source order."""
        return list(self._names)

    @property
    def native(self) -> Any:
        """The backend's ``_C.Library``."""
        return self._native

    @property
    def structs(self) -> dict:
        """Layouts of the structs the source defines: name -> ``_C.StructLayout``."""
        return self._native.structs

    def __getitem__(self, name: str):
        kernel = self._kernels.get(name)
        if kernel is not None:
            return kernel
        if name not in self._names:
            raise KernelNotFound(self._missing(name))
        kernel = self._native.kernel(name)
        self._kernels[name] = kernel
        if name not in self.__dict__ and not hasattr(type(self), name):
            self.__dict__[name] = kernel  # later lib.NAME is a plain attribute lookup
        return kernel

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for kernels not fetched yet.
        if name.startswith("__") or name in ("_native", "_names", "_kernels"):
            raise AttributeError(name)
        return self[name]

    def _missing(self, name: str) -> str:
        have = ", ".join(self._names) if self._names else "(no kernels)"
        return f"no kernel named {name!r} in this library; it has: {have}"

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._names))

    def __repr__(self) -> str:
        return f"<metalrt.Library on {self.backend}: {', '.join(self._names) or '(no kernels)'}>"


_cache: dict[tuple, Library] = {}
_plain: dict[tuple, Library] = {}  # (backend, source, math) -> Library, for calls without options
_building: dict[tuple, threading.Lock] = {}
_cache_lock = threading.Lock()


def compile(  # noqa: A001 - the public name is fixed
    source: str,
    backend: str | None = None,
    *,
    defines: dict[str, Any] | None = None,
    constants: dict[str | int, Any] | None = None,
    math: str = "safe",
    name_expressions: list[str] | None = None,
) -> Library:
    """Compiles ``source`` for ``backend`` (default: the default device's) and returns a Library.

    - ``defines``: preprocessor macros, ``{"BLOCK": 256}`` is ``-DBLOCK=256``.
    - ``constants``: values of MSL ``[[function_constant(i)]]`` declarations, by name or index.
    - ``math``: "safe" (default; IEEE behaviour), "fast" or "relaxed" (the compiler may reorder
      and approximate).
    - ``name_expressions``: CUDA only, the template instantiations to build ("scale<float>").

    The same arguments on the same device return the same Library object without compiling
    again; backends also keep compiled code on disk (``metalrt.cache_dir()``), so a new process
    skips most of the work. Raises CompileError with the compiler's log (line numbers point into
    ``source``) and BackendUnavailable when the backend cannot run here.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    name = backend if backend is not None else _registry.default_name()
    plain = defines is None and constants is None and name_expressions is None
    if plain:  # the common call: one dict lookup, no options object
        lib = _plain.get((name, source, math))
        if lib is not None:
            return lib
    drv = _registry.driver(name)
    dev = _registry.device(name)
    options = _options(defines, constants, math, name_expressions)
    key = (name, dev.index, source, options)
    lib = _cache.get(key)
    if lib is not None:
        return lib
    with _cache_lock:
        build_lock = _building.setdefault(key, threading.Lock())
    with build_lock:  # one build per key; other threads wait for it, then find it cached
        lib = _cache.get(key)
        if lib is None:
            native = drv.build(source, options)
            lib = Library(native, backend=name, device=dev, source=source, options=options)
            _cache[key] = lib
    with _cache_lock:
        _building.pop(key, None)
    if plain:
        _plain[(name, source, math)] = lib
    return lib


def clear_cache() -> None:
    """Forgets every compiled Library of this process (the disk cache is untouched)."""
    with _cache_lock:
        _cache.clear()
        _plain.clear()
