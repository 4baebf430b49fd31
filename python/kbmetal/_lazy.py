"""Attributes of a package that import their module on first use (PEP 562), so that importing
the package stays cheap: `__getattr__, __dir__ = lazy_attributes(__name__, {name: (module, attr)})`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, table: dict[str, tuple[str, str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        if name in table:
            module, attribute = table[name]
            value = getattr(importlib.import_module(module), attribute)
            setattr(sys.modules[package], name, value)  # looked up once
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
