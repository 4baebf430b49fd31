"""A problem file: what it declares, checked when it loads."""

from __future__ import annotations

import copy
import pathlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from . import ids
from .errors import ProblemError, raised
from .program import ModuleProgram, size_constants

if TYPE_CHECKING:
    from .instance import ProblemInstance

CATEGORIES = (
    "matmul", "activation", "softmax", "norm", "reduction", "scan", "conv", "pool", "loss",
    "attention", "fusion", "architecture", "other",
)  # fmt: skip
DOMAINS = ("real", "positive", "unit", "probability", "nonzero", "fixed")
DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}
# A file without DTYPES (every upstream file) may run in any of these; the first is its default.
UNDECLARED_DTYPES = ("float32", "float16", "bfloat16")
# Preset names with a meaning of their own; a file cannot define them.
RESERVED_PRESETS = ("default", "auto-small")


@dataclass(frozen=True, eq=False)
class Problem:
    """One KernelBench-format file, loaded and checked. Cheap to keep; holds no tensors."""

    id: str
    level: int
    name: str
    path: pathlib.Path
    source: str
    category: str | None
    presets: dict[str, dict[str, object]]
    input_domains: dict[int, str]
    dtypes: tuple[str, ...]
    _program: ModuleProgram = field(repr=False)
    _constants: dict[str, object] = field(repr=False)
    _declares_dtypes: bool = field(repr=False, default=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return self.path == other.path and self.source == other.source

    def __hash__(self) -> int:
        return hash((self.path, self.source))

    def __reduce__(self):
        # Compiled code does not pickle; the source does, and loading it again is cheap. This is
        # what lets a Problem travel to a worker process.
        return (_load_source, (self.path, self.source))

    def constants(self) -> dict[str, object]:
        """Module-level size constants as the file writes them (numbers and tuples)."""
        return copy.deepcopy(self._constants)

    def allowed_dtypes(self) -> tuple[str, ...]:
        return self.dtypes if self._declares_dtypes else UNDECLARED_DTYPES

    def instantiate(
        self,
        sizes: str | dict | None = None,
        *,
        overrides: dict | None = None,
        dtype: str | None = None,
    ) -> ProblemInstance:
        """A fresh module namespace with sizes applied.

        `sizes` is None or "default" (the file's constants), a preset name, "auto-small" (sizes
        chosen by rule, for files without presets; "small" falls back to it when the file has no
        `small` preset), or a dict of constant overrides. `overrides` apply on top of it.
        """
        from .instance import ProblemInstance
        from .sizing import resolve_sizes

        preset, pins = resolve_sizes(self, sizes, overrides)
        dtype = dtype or self.dtypes[0]
        if dtype not in self.allowed_dtypes():
            fix = (
                "add it to the file's DTYPES"
                if self._declares_dtypes
                else f"use one of {', '.join(UNDECLARED_DTYPES)}"
            )
            raise ProblemError(
                self.path,
                f"dtype {dtype!r} is not one this problem runs in "
                f"({', '.join(self.allowed_dtypes())}); {fix}",
            )
        try:
            module = self._program.execute(pins)
        except Exception as exc:
            raise raised(self.path, f"the module at sizes {pins}", exc) from None
        return ProblemInstance(self, module, size_constants(self._program, module), preset, dtype)


def load_problem(path: str | pathlib.Path) -> Problem:
    """Load and check one problem file; any defect is a ProblemError naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ProblemError(path, "no such problem file")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(path, f"cannot read the file: {exc}") from None
    return _load_source(path.resolve(), source)


def _load_source(path: pathlib.Path, source: str) -> Problem:
    program = ModuleProgram(path, source)
    try:
        module = program.execute()
    except Exception as exc:
        raise raised(path, "the module", exc) from None
    namespace = vars(module)
    _check_entry_points(path, namespace)
    constants = size_constants(program, module)
    presets = _read_presets(path, namespace, constants)
    declares_dtypes = "DTYPES" in namespace
    return Problem(
        id=ids.problem_id(path),
        level=ids.level_of(path),
        name=path.stem,
        path=path,
        source=source,
        category=_read_category(path, namespace),
        presets=presets,
        input_domains=_read_domains(path, namespace),
        dtypes=_read_dtypes(path, namespace),
        _program=program,
        _constants=constants,
        _declares_dtypes=declares_dtypes,
    )


def _check_entry_points(path: pathlib.Path, namespace: dict) -> None:
    needed = "a KernelBench problem defines class Model(nn.Module), get_inputs() and get_init_inputs()"
    model = namespace.get("Model")
    if model is None:
        raise ProblemError(path, f"defines no Model class ({needed})")
    if not (isinstance(model, type) and issubclass(model, torch.nn.Module)):
        raise ProblemError(path, f"Model is not a torch.nn.Module subclass ({needed})")
    for name in ("get_inputs", "get_init_inputs"):
        if name not in namespace:
            raise ProblemError(path, f"defines no {name}() ({needed})")
        if not callable(namespace[name]):
            raise ProblemError(path, f"{name} is not a function ({needed})")


def _read_presets(path: pathlib.Path, namespace: dict, constants: dict) -> dict:
    presets = namespace.get("PRESETS", {})
    if not isinstance(presets, dict) or not all(
        isinstance(name, str) and isinstance(sizes, dict) for name, sizes in presets.items()
    ):
        raise ProblemError(path, 'PRESETS must map preset names to dicts: {"small": {"N": 64}}')
    for name, sizes in presets.items():
        if name in RESERVED_PRESETS:
            raise ProblemError(path, f"PRESETS may not define {name!r}: the name is reserved")
        unknown = sorted(set(sizes) - set(constants))
        if unknown:
            raise ProblemError(
                path,
                f"preset {name!r} sets {', '.join(unknown)}, which the file does not define as "
                f"module-level size constants (it defines: {', '.join(constants) or 'none'})",
            )
    return copy.deepcopy(presets)


def _read_category(path: pathlib.Path, namespace: dict) -> str | None:
    category = namespace.get("CATEGORY")
    if category is not None and category not in CATEGORIES:
        raise ProblemError(
            path, f"CATEGORY {category!r} is not one of: {', '.join(CATEGORIES)}"
        )
    return category


def _read_domains(path: pathlib.Path, namespace: dict) -> dict[int, str]:
    domains = namespace.get("INPUT_DOMAINS", {})
    if not isinstance(domains, dict):
        raise ProblemError(path, 'INPUT_DOMAINS must map input indices to domains: {0: "positive"}')
    for index, domain in domains.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ProblemError(
                path, f"INPUT_DOMAINS key {index!r} is not an input index (0, 1, ...)"
            )
        if domain not in DOMAINS:
            raise ProblemError(
                path,
                f"INPUT_DOMAINS[{index}] = {domain!r} is not one of: {', '.join(DOMAINS)}",
            )
    return dict(domains)


def _read_dtypes(path: pathlib.Path, namespace: dict) -> tuple[str, ...]:
    dtypes = namespace.get("DTYPES", ("float32",))
    if isinstance(dtypes, str) or not isinstance(dtypes, (tuple, list)) or not dtypes:
        raise ProblemError(path, 'DTYPES must be a non-empty tuple of names: ("float32", "float16")')
    for name in dtypes:
        if name not in DTYPES:
            raise ProblemError(path, f"DTYPES names {name!r}; known dtypes: {', '.join(DTYPES)}")
    return tuple(dtypes)

