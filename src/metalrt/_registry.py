"""Backend drivers by name, found lazily.

A driver is a small class (see docs/internals.md): ``name``, ``unavailable_reason()``,
``device()``, ``compiler_id()``, ``build(source, options)``, ``synchronize()``, ``timer()``.
The built-in ones live in modules that may not exist in every build (or yet): a missing module
means "not available here", never an import error. Nothing is imported until a backend is
asked for, so ``import metalrt`` stays light.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any

from .errors import BackendUnavailable

__all__ = ["register", "unregister", "names", "available", "default_name", "driver", "device",
           "unavailable_reason", "reset"]

# Preference order for the default device: a real GPU first, the simulator last.
DEFAULT_ORDER = ("metal", "cuda", "sim")

_BUILTIN = {
    "metal": ("metalrt._metal", "MetalDriver"),
    "cuda": ("metalrt._cuda", "CudaDriver"),
    "sim": ("metalrt.sim.driver", "SimDriver"),
}


class _Entry:
    __slots__ = ("factory", "driver", "reason", "checked", "device")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self.driver: Any = None
        self.reason: str | None = None
        self.checked = False
        self.device: Any = None


def _builtin_factory(name: str) -> Callable[[], Any]:
    module_name, class_name = _BUILTIN[name]

    def load() -> Any:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                raise BackendUnavailable(
                    f"the {name} backend is not part of this installation (no module {module_name})"
                ) from None
            raise
        return getattr(module, class_name)()

    return load


_lock = threading.RLock()
_entries: dict[str, _Entry] = {n: _Entry(_builtin_factory(n)) for n in _BUILTIN}
_default: str | None = None  # the default backend, once found (forgotten when the set changes)


def register(name: str, factory: Callable[[], Any]) -> None:
    """Registers (or replaces) backend ``name``; ``factory()`` returns its driver on first use.
    Libraries already compiled under that name stay in compile()'s cache until
    ``metalrt.clear_cache()``."""
    global _default
    with _lock:
        _entries[name] = _Entry(factory)
        _default = None


def unregister(name: str) -> None:
    """Forgets backend ``name``; a built-in one goes back to its default driver."""
    global _default
    with _lock:
        if name in _BUILTIN:
            _entries[name] = _Entry(_builtin_factory(name))
        else:
            _entries.pop(name, None)
        _default = None


def reset() -> None:
    """Forgets every loaded driver and availability verdict (they are found again on next use)."""
    global _default
    with _lock:
        for entry in _entries.values():
            entry.driver, entry.reason, entry.checked, entry.device = None, None, False, None
        _default = None


def names() -> list[str]:
    """Every backend metalrt knows, usable here or not."""
    with _lock:
        return list(_entries)


def _entry(name: str) -> _Entry:
    entry = _entries.get(name)
    if entry is None:
        known = ", ".join(_entries)
        raise ValueError(f"unknown backend {name!r}; metalrt knows: {known}")
    return entry


def _check(entry: _Entry, name: str) -> None:
    # Loads the driver and asks it once whether it can run here; the verdict is kept.
    if entry.checked:
        return
    try:
        drv = entry.factory()
        reason = drv.unavailable_reason()
    except BackendUnavailable as e:
        drv, reason = None, str(e)
    except Exception as e:  # a broken driver must not break the other backends
        drv, reason = None, f"the {name} driver failed to load: {type(e).__name__}: {e}"
    entry.driver, entry.reason, entry.checked = drv, reason, True


def unavailable_reason(name: str) -> str | None:
    """None when backend ``name`` is usable here, else why not (and what would fix it)."""
    with _lock:
        entry = _entry(name)
        _check(entry, name)
        return entry.reason


def available() -> list[str]:
    """The backends usable here, in default-preference order (metal, cuda, sim, then others)."""
    with _lock:
        order = [n for n in DEFAULT_ORDER if n in _entries] + [n for n in _entries if n not in DEFAULT_ORDER]
        return [n for n in order if unavailable_reason(n) is None]


def default_name() -> str:
    """The backend used when none is named: ``$METALRT_BACKEND`` if set, else the first usable
    one of metal, cuda, sim."""
    global _default
    forced = os.environ.get("METALRT_BACKEND")
    if forced:
        return forced
    if _default is not None:
        return _default
    with _lock:
        usable = available()
        if not usable:
            reasons = "; ".join(f"{n}: {unavailable_reason(n)}" for n in names())
            raise BackendUnavailable(f"no metalrt backend is usable here ({reasons})")
        _default = usable[0]
        return _default


def driver(name: str | None = None) -> Any:
    """The driver of backend ``name`` (the default one if None). Raises BackendUnavailable with
    the driver's own reason when it cannot run here."""
    if name is None:
        name = default_name()
    entry = _entries.get(name)
    if entry is not None and entry.checked and entry.reason is None:
        return entry.driver  # the common case, without the lock
    with _lock:
        entry = _entry(name)
        _check(entry, name)
        if entry.reason is not None:
            raise BackendUnavailable(f"backend {name!r} is not usable here: {entry.reason}")
        return entry.driver


def device(name: str | None = None) -> Any:
    """The ``metalrt.Device`` of backend ``name`` (asked once, then remembered)."""
    if name is None:
        name = default_name()
    drv = driver(name)
    entry = _entries[name]
    if entry.device is not None:
        return entry.device
    from .device import Device

    dev = drv.device()
    if not isinstance(dev, Device):
        dev = Device.from_info(dev)
    entry.device = dev
    return dev
