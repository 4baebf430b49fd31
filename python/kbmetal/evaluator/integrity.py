"""Monkey-patching and precision switches: a fingerprint of what a candidate must leave alone.

Before the candidate's module is imported, the worker records the identity of every function,
class, module and descriptor in the namespaces a cheat would patch (torch and its functional API, `torch.Tensor` and
`nn.Module`, the clocks in `time`, the runtime `metalrt`, the harness's own worker modules), plus
the code objects of the harness's functions and the global switches that lower precision
(TF32, reduced-precision reductions, matmul precision, the default dtype) or turn off the
poisoning of fresh allocations. After import, after every trial and after timing it looks again;
any attribute replaced or deleted, any switch flipped, is a failing finding that names it.

Attributes added (a new method on `torch.Tensor`, say) are not patching and are not reported.
Namespaces that import lazily (torch._dynamo fills in attributes as it loads) are compared only
on the names present at the first look.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable
from typing import Any

import torch


def _switches() -> dict[str, Any]:
    """Global settings that change numerics or the harness's defences."""
    values: dict[str, Any] = {
        "torch.get_default_dtype()": str(torch.get_default_dtype()),
        "torch.get_float32_matmul_precision()": torch.get_float32_matmul_precision(),
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction": (
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
        ),
        "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction": (
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
        ),
        "torch.are_deterministic_algorithms_enabled()": torch.are_deterministic_algorithms_enabled(),
        "torch.utils.deterministic.fill_uninitialized_memory": (
            torch.utils.deterministic.fill_uninitialized_memory
        ),
        "torch._C._len_torch_dispatch_stack()": torch._C._len_torch_dispatch_stack(),
    }
    return values


def _watched_namespaces(extra_modules: list[types.ModuleType]) -> dict[str, Any]:
    spaces: dict[str, Any] = {
        "torch": torch,
        "torch.Tensor": torch.Tensor,
        "torch._C.TensorBase": torch._C.TensorBase,
        "torch.nn.functional": torch.nn.functional,
        "torch.nn.Module": torch.nn.Module,
        "torch.testing": torch.testing,
        "torch.cuda": torch.cuda,
        "torch.random": torch.random,
        "torch.utils._python_dispatch": sys.modules.get("torch.utils._python_dispatch"),
        "time": time,
    }
    for module in extra_modules:
        spaces[module.__name__] = module
        for name, value in vars(module).items():
            # the classes a module defines (metalrt.Kernel, the harness's recorder) are watched too
            if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
                spaces[f"{module.__name__}.{name}"] = value
    return {k: v for k, v in spaces.items() if v is not None}


def _identity(value: Any) -> int:
    return id(value)


def _watchable(value: Any) -> bool:
    """Functions, classes, modules and descriptors: what a patch replaces. Plain data in a
    module (a lazily filled cache, the name of the default backend) changes legitimately."""
    return callable(value) or isinstance(value, (types.ModuleType, property, staticmethod, classmethod))


def _torch_rewrap(old: Any, new: Any) -> bool:
    """Importing torch._dynamo rebinds a few torch functions to `_disable_dynamo` wrappers of
    themselves (torch.manual_seed): a change made by torch, not by the candidate."""
    code = getattr(new, "__code__", None)
    return (
        getattr(new, "__wrapped__", None) is old
        and code is not None
        and code.co_filename.replace("\\", "/").endswith("torch/_compile.py")
    )


class Fingerprint:
    """What the namespaces and switches looked like at `take()`."""

    def __init__(self, extra_modules: list[types.ModuleType] | None = None, switches: bool = True):
        self._spaces = _watched_namespaces(extra_modules or [])
        self._with_switches = switches
        self._attrs: dict[str, dict[str, int]] = {}
        self._values: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, int] = {}
        self._modules: dict[str, int] = {}
        self._switches: dict[str, Any] = {}

    def take(self, switch_overrides: dict[str, Any] | None = None) -> Fingerprint:
        for label, space in self._spaces.items():
            watched = {name: value for name, value in vars(space).items() if _watchable(value)}
            self._attrs[label] = {name: _identity(value) for name, value in watched.items()}
            self._values[label] = watched
            for name, value in vars(space).items():
                code = getattr(value, "__code__", None)
                if code is not None and label.startswith(("kbmetal", "metalrt")):
                    self._codes[f"{label}.{name}"] = id(code)
        self._modules = {
            name: id(module)
            for name, module in sys.modules.items()
            if name == "torch" or name.startswith(("torch.nn", "kbmetal", "metalrt", "time"))
        }
        if self._with_switches:
            self._switches = {**_switches(), **(switch_overrides or {})}
        return self

    def expect_switch(self, name: str, value: Any) -> None:
        """The harness itself changes a switch (e.g. turns poisoning on for a trial)."""
        self._switches[name] = value

    def changes(self) -> list[str]:
        """What differs from the fingerprint, one line per change."""
        found: list[str] = []
        for label, attrs in self._attrs.items():
            current = vars(self._spaces[label])
            for name, ident in attrs.items():
                if name not in current:
                    found.append(f"{label}.{name} was deleted")
                elif _identity(current[name]) != ident and not _torch_rewrap(
                    self._values[label][name], current[name]
                ):
                    found.append(f"{label}.{name} was replaced")
            space = self._spaces[label]
            if isinstance(space, type):
                # a new class attribute that shadows an inherited one is a patch too
                for name in current.keys() - attrs.keys():
                    if _watchable(current[name]) and any(name in vars(base) for base in space.__mro__[1:]):
                        found.append(f"{label}.{name} was overridden")
        for qualified, ident in self._codes.items():
            label, _, name = qualified.rpartition(".")
            value = vars(self._spaces[label]).get(name)
            code = getattr(value, "__code__", None)
            if code is not None and id(code) != ident:
                found.append(f"the code of {qualified} was replaced")
        for name, ident in self._modules.items():
            module = sys.modules.get(name)
            if module is None or id(module) != ident:
                found.append(f"sys.modules[{name!r}] was replaced")
        if self._with_switches:
            now = _switches()
            for name, value in self._switches.items():
                if now.get(name) != value:
                    found.append(f"{name} changed from {value!r} to {now.get(name)!r}")
        return found


def guard_call(check: Callable[[], list[str]]) -> list[str]:
    try:
        return check()
    except Exception as exc:  # a namespace so broken it cannot be read is itself tampering
        return [f"the fingerprint could not be checked: {type(exc).__name__}: {exc}"]
