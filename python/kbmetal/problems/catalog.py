"""Finding problem files: our bundled set, any folder of KernelBench files, ids and names."""

from __future__ import annotations

import os
import pathlib

from . import ids
from .errors import ProblemError
from .problem import Problem, load_problem

_HERE = pathlib.Path(__file__).resolve()
# python/kbmetal/problems/catalog.py -> the checkout's root, when running from one.
_CHECKOUT_PROBLEMS = _HERE.parents[3] / "problems"
# kbmetal/problems/catalog.py -> kbmetal/_data/problems, where the wheel puts them.
_PACKAGED_PROBLEMS = _HERE.parents[1] / "_data" / "problems"


def problems_root() -> pathlib.Path:
    """`$KBMETAL_PROBLEMS_DIR`, else the checkout's problems/, else the installed package data."""
    override = os.environ.get("KBMETAL_PROBLEMS_DIR")
    if override:
        return pathlib.Path(override)
    if (_CHECKOUT_PROBLEMS / "level1").is_dir():
        return _CHECKOUT_PROBLEMS
    return _PACKAGED_PROBLEMS


def _is_problem_file(path: pathlib.Path) -> bool:
    return path.suffix == ".py" and not path.name.startswith(("_", "."))


def problem_files(where: str | int | os.PathLike | None = None) -> list[pathlib.Path]:
    """The problem files `load_problems(where)` would load, in id order, without loading them."""
    if where is None:
        root = problems_root()
        if not root.is_dir():
            raise ProblemError(root, "no bundled problems here (is kbmetal installed with its data?)")
        folders = sorted(p for p in root.iterdir() if p.is_dir() and ids.folder_level(p) > 0)
        return sorted((f for d in folders for f in _files_in(d)), key=ids.sort_key)
    path = pathlib.Path(where) if not isinstance(where, int) else None
    if path is not None and path.is_file():
        return [path]
    if path is not None and path.is_dir():
        files = _files_in(path)
        if files:
            return files
        # A checkout's root (KernelBench/ or problems/): its level folders.
        levels = [p for p in path.iterdir() if p.is_dir() and ids.folder_level(p) > 0]
        if levels:
            return sorted((f for d in levels for f in _files_in(d)), key=ids.sort_key)
        raise ProblemError(path, "no problem files (*.py) in this folder")
    level = ids.parse_level(where) if isinstance(where, (str, int)) else None
    if level is not None:
        folder = problems_root() / f"level{level}"
        if not folder.is_dir():
            raise ProblemError(folder, f"no level {level} in the bundled problems")
        return _files_in(folder)
    raise ProblemError(
        path, "no such file or folder (give a problem file, a folder, or a level: 1, L1, level1)"
    )


def _files_in(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and _is_problem_file(p)), key=ids.sort_key)


def load_problems(where: str | int | os.PathLike | None = None) -> list[Problem]:
    """Load a folder of problem files, a level of ours ("level1", "1", "L1"), or, with None, our
    whole set. Stops at the first broken file with its ProblemError."""
    return [load_problem(path) for path in problem_files(where)]


def find_problem(problem_id_or_path: str | os.PathLike) -> Problem:
    """A problem by path, by id (`L1-019`), or by file stem (`019_relu`), in our set."""
    text = os.fspath(problem_id_or_path)
    path = pathlib.Path(text)
    if path.is_file():
        return load_problem(path)
    root = problems_root()
    parsed = ids.parse_id(text)
    if parsed is not None:
        level, number = parsed
        folder = root / f"level{level}"
        matches = _files_in(folder) if folder.is_dir() else []
        matches = [p for p in matches if ids.number_of(p) == number]
        if len(matches) == 1:
            return load_problem(matches[0])
        if len(matches) > 1:
            raise ProblemError(folder, f"{text} is ambiguous: {', '.join(p.name for p in matches)}")
        raise ProblemError(root, f"no problem {text.upper()} (looked in {folder})")
    stem = path.stem if path.suffix == ".py" else path.name
    candidates = [
        p
        for d in (sorted(root.iterdir()) if root.is_dir() else [])
        if d.is_dir()
        for p in _files_in(d)
        if p.stem == stem and (len(path.parts) == 1 or p.parent.name == path.parent.name)
    ]
    if len(candidates) == 1:
        return load_problem(candidates[0])
    if len(candidates) > 1:
        raise ProblemError(
            root, f"{text} names several problems ({', '.join(str(p) for p in candidates)}); give the id"
        )
    raise ProblemError(path, "no such problem: not a file, an id (L1-019) or a problem's file name")
