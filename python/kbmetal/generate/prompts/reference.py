"""The problem as a prompt shows it: the file, less what a model must not see.

`PRESETS` goes: its `heldout` sizes are the ones a candidate is judged at without having seen them
(a kernel with hard-coded shapes fails there), and the sim's `small` sizes would invite tuning to
them. Everything else stays as written, so the model reads the same file KernelBench gives.
"""

from __future__ import annotations

import ast
import re

HIDDEN = frozenset({"PRESETS"})


def _binds_hidden(stmt: ast.stmt) -> bool:
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return any(isinstance(t, ast.Name) and t.id in HIDDEN for t in targets)


def shown_source(source: str) -> str:
    """`source` without its top-level PRESETS assignments (and the blank lines they leave)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source  # the loader accepted it; show it as it is
    lines = source.splitlines()
    drop: set[int] = set()
    for stmt in tree.body:
        if _binds_hidden(stmt):
            drop.update(range(stmt.lineno - 1, (stmt.end_lineno or stmt.lineno)))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"


def model_signature(source: str) -> str | None:
    """The `Model` class with docstrings removed, as text: two files with the same one pose the
    same problem, whatever they are called."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for sub in ast.walk(node):
                body = getattr(sub, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                        getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
                    sub.body = body[1:] or [ast.Pass()]
            return ast.unparse(node)
    return None


def plain_name(name: str) -> str:
    """`019_ReLU` and `012_relu` -> `relu`: a problem's name without its number, case or separators."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^\d+_?", "", name.lower()))
