"""A problem file compiled once and executed into fresh module namespaces.

Size overrides must reach every constant that depends on them: upstream files write
`input_shape = (batch_size, 3, 224, 224)` or `bias_shape = (out_channels, 1, 1)`, computed once
when the module runs. So a namespace is built one top-level statement at a time, and right after a
statement assigns an overridden name, the override is put back. Later statements, and functions
that read globals when called, then all see the override, exactly as if the file had been written
with it.
"""

from __future__ import annotations

import __future__
import ast
import copy
import itertools
import pathlib
import sys
import types
from dataclasses import dataclass

from .errors import ProblemError

# Module attributes kbmetal reads; never size constants.
METADATA_NAMES = frozenset({"PRESETS", "CATEGORY", "INPUT_DOMAINS", "DTYPES"})

_module_counter = itertools.count()


def is_size_value(value: object) -> bool:
    """Numbers and (nested) tuples or lists of numbers: what a size override may replace."""
    if isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, (tuple, list)):
        return all(is_size_value(item) for item in value)
    return False


def _assigned_names(stmt: ast.stmt) -> list[str]:
    """Names a top-level statement binds by plain assignment (`a = b = 1`, `D, H, W = ...`)."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets = [stmt.target]
    else:
        return []
    names: list[str] = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
            elif not isinstance(node, (ast.Tuple, ast.List, ast.Store, ast.Starred)):
                return []  # `x[0] = ...`, `obj.attr = ...`: not a constant definition
    return names


@dataclass(frozen=True)
class LiteralSlot:
    """An integer literal on the right of a top-level constant assignment.

    Automatic sizing rewrites these, so `input_shape = (batch_size, 3, 224, 224)` can shrink its
    224s while still following `batch_size`.
    """

    statement: int  # index of the top-level statement
    ordinal: int  # position among the statement's integer literals, in ast.walk order
    value: int
    names: tuple[str, ...]  # the constants the statement assigns


def _int_literals(node: ast.AST) -> list[ast.Constant]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and type(n.value) is int  # bool is not a size
    ]


class ModuleProgram:
    """The compiled statements of one problem file."""

    def __init__(self, path: pathlib.Path, source: str):
        self.path = path
        self.filename = str(path)
        try:
            tree = ast.parse(source, filename=self.filename)
        except SyntaxError as exc:
            raise ProblemError(path, f"syntax error on line {exc.lineno}: {exc.msg}") from None
        self._flags = 0
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                for alias in stmt.names:
                    feature = getattr(__future__, alias.name, None)
                    if feature is not None:
                        self._flags |= feature.compiler_flag
        self._statements = tree.body
        self._names = [tuple(_assigned_names(stmt)) for stmt in tree.body]
        try:
            self._code = [self._compile(stmt) for stmt in tree.body]
        except SyntaxError as exc:  # errors only the compiler sees, e.g. `return` at top level
            raise ProblemError(path, f"syntax error on line {exc.lineno}: {exc.msg}") from None

    def _compile(self, stmt: ast.stmt) -> types.CodeType:
        module = ast.Module(body=[stmt], type_ignores=[])
        return compile(module, self.filename, "exec", flags=self._flags, dont_inherit=True)

    def assigned_names(self) -> list[str]:
        """Every name bound by a top-level assignment, in order of first assignment."""
        return list(dict.fromkeys(name for names in self._names for name in names))

    def execute(
        self,
        pins: dict[str, object] | None = None,
        substitutions: dict[tuple[int, int], int] | None = None,
    ) -> types.ModuleType:
        """Run the file into a new module. Exceptions from the file's own code propagate."""
        pins = pins or {}
        substitutions = substitutions or {}
        module = types.ModuleType(f"kbmetal_problem_{next(_module_counter)}")
        module.__file__ = self.filename
        namespace = module.__dict__
        # Registered while it runs, so that code which looks its module up (dataclasses, typing)
        # works; removed afterwards so that thousands of instances do not pile up in sys.modules.
        sys.modules[module.__name__] = module
        try:
            for index, (code, names) in enumerate(zip(self._code, self._names)):
                if substitutions and any(key[0] == index for key in substitutions):
                    code = self._substituted(index, substitutions)
                exec(code, namespace)
                for name in names:
                    if name in pins:
                        namespace[name] = copy.deepcopy(pins[name])
        finally:
            sys.modules.pop(module.__name__, None)
        return module

    def literal_slots(self, constant_names: set[str]) -> list[LiteralSlot]:
        """Integer literals in statements that assign only size constants."""
        slots = []
        for index, (stmt, names) in enumerate(zip(self._statements, self._names)):
            if not names or not set(names) <= constant_names:
                continue
            for ordinal, node in enumerate(_int_literals(stmt.value)):
                slots.append(LiteralSlot(index, ordinal, node.value, names))
        return slots

    def _substituted(self, index: int, substitutions: dict[tuple[int, int], int]) -> types.CodeType:
        stmt = copy.deepcopy(self._statements[index])
        for ordinal, node in enumerate(_int_literals(stmt.value)):
            if (index, ordinal) in substitutions:
                node.value = substitutions[(index, ordinal)]
        return self._compile(stmt)


def size_constants(program: ModuleProgram, module: types.ModuleType) -> dict[str, object]:
    """The module's size constants: top-level assignments whose value is a number or a tuple."""
    namespace = vars(module)
    return {
        name: namespace[name]
        for name in program.assigned_names()
        if not name.startswith("_")
        and name not in METADATA_NAMES
        and name in namespace
        and is_size_value(namespace[name])
    }
