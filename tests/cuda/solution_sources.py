"""The CUDA sources of the bundled solutions, read without importing them (importing compiles for
a device): each module's SOURCE string and the keyword arguments of its metalrt.compile call."""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass, field

SOLUTIONS = pathlib.Path(__file__).resolve().parents[2] / "solutions" / "cuda"


@dataclass
class SolutionSource:
    path: pathlib.Path
    source: str
    name_expressions: list[str] = field(default_factory=list)
    defines: dict[str, str] = field(default_factory=dict)


def read(path: pathlib.Path) -> SolutionSource:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {}
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                constants[node.targets[0].id] = node.value.value
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "compile"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "metalrt"):
            calls.append(node)
    if len(calls) != 1:
        raise AssertionError(f"{path.name}: expected one metalrt.compile call, found {len(calls)}")
    call = calls[0]
    arg = call.args[0]
    source = constants[arg.id] if isinstance(arg, ast.Name) else ast.literal_eval(arg)
    kwargs = {kw.arg: kw.value for kw in call.keywords}
    if not (isinstance(kwargs.get("backend"), ast.Constant) and kwargs["backend"].value == "cuda"):
        raise AssertionError(f"{path.name}: metalrt.compile must name backend=\"cuda\"")
    names = ast.literal_eval(kwargs["name_expressions"]) if "name_expressions" in kwargs else []
    defines = ast.literal_eval(kwargs["defines"]) if "defines" in kwargs else {}
    return SolutionSource(path, source, list(names), {k: str(v) for k, v in defines.items()})


def all_solutions() -> list[pathlib.Path]:
    return sorted(SOLUTIONS.glob("L*.py"))
