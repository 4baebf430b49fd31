"""Folders of solutions: which file solves which problem, and where the bundled ones live.

A solutions folder holds one file per problem (docs/problem-format.md): named by the problem's id
(`L1-019.py`) or by its file stem (`019_relu.py`, upstream's `19_ReLU.py`). Bundled solutions sit
in the checkout's `solutions/<language>/` or, installed, in `kbmetal/_data/solutions/<language>/`;
`$KBMETAL_SOLUTIONS_DIR` points elsewhere. The language follows the backend: MSL (`metal`) for
the sim and Metal, `cuda` for CUDA.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .problems import Problem
from .problems.ids import parse_id

LANGUAGE = {"sim": "metal", "metal": "metal", "cuda": "cuda"}
_HERE = pathlib.Path(__file__).resolve()
_CHECKOUT = _HERE.parents[2] / "solutions"
_PACKAGED = _HERE.parent / "_data" / "solutions"


class SolutionsError(Exception):
    """A solutions folder or selection that cannot be used; the message says how to fix it."""


def bundled_dir(backend: str) -> pathlib.Path:
    """Where the bundled solutions for `backend` are (the folder may not exist)."""
    override = os.environ.get("KBMETAL_SOLUTIONS_DIR")
    if override:
        return pathlib.Path(override)
    language = LANGUAGE.get(backend, backend)
    for root in (_CHECKOUT, _PACKAGED):
        if (root / language).is_dir():
            return root / language
    return _CHECKOUT / language


@dataclass(frozen=True)
class Solution:
    path: pathlib.Path
    problem: Problem

    def source(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SolutionsError(f"{self.path}: cannot read the solution ({exc})") from None


def match(folder: pathlib.Path, problems: Iterable[Problem]) -> tuple[list[Solution], list[pathlib.Path]]:
    """(solutions matched to problems, files that match no problem), in problem order."""
    if not folder.exists():
        raise SolutionsError(f"{folder}: no such folder of solutions")
    if not folder.is_dir():
        raise SolutionsError(f"{folder}: not a folder (give the folder that holds L1-019.py and the like)")
    problems = list(problems)
    by_id = {p.id.upper(): p for p in problems}
    by_stem: dict[str, Problem] = {}
    for p in problems:
        by_stem.setdefault(p.path.stem.lower(), p)
    matched: dict[str, Solution] = {}
    unmatched = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith(("_", ".")):
            continue
        problem = by_id.get(path.stem.upper()) if parse_id(path.stem) else by_stem.get(path.stem.lower())
        if problem is None:
            unmatched.append(path)
        elif problem.id not in matched:
            matched[problem.id] = Solution(path, problem)
    order = {p.id: i for i, p in enumerate(problems)}
    return sorted(matched.values(), key=lambda s: order[s.problem.id]), unmatched


_RANGE = re.compile(r"^\s*(L\d+-\d+)\s*(?:\.\.|:)\s*(L\d+-\d+)\s*$", re.IGNORECASE)


def select(
    problems: Iterable[Problem], levels: list[int] | None = None, spec: str | None = None
) -> list[Problem]:
    """Problems of the given levels and matching `spec`: ids and ranges, comma-separated
    (`L1-001..L1-020,L2-003`)."""
    chosen = [p for p in problems if not levels or p.level in levels]
    if not spec:
        return chosen
    ranges: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = _RANGE.match(part)
        if m:
            lo, hi = parse_id(m.group(1)), parse_id(m.group(2))
            if lo > hi:
                raise SolutionsError(
                    f"problem range {part!r} runs backwards; write {m.group(2)}..{m.group(1)}"
                )
            ranges.append((lo, hi))
        elif parse_id(part):
            ranges.append((parse_id(part), parse_id(part)))
        else:
            raise SolutionsError(f"{part!r} is not a problem id or range (write L1-001 or L1-001..L1-020)")
    result = []
    for p in chosen:
        key = parse_id(p.id)
        if key and any(lo <= key <= hi for lo, hi in ranges):
            result.append(p)
    return result
