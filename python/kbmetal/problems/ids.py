"""Problem ids: `L<level>-<nnn>`, the level from the folder and the number from the file name.

`problems/level1/019_relu.py` and upstream's `level1/19_ReLU.py` are both `L1-019`. A file whose
folder is not `levelN` has level 0; a file whose name has no leading number is known by its stem.
"""

from __future__ import annotations

import pathlib
import re

_LEVEL_DIR = re.compile(r"^level(\d+)$", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^(\d+)")
_ID = re.compile(r"^L(\d+)-(\d+)$", re.IGNORECASE)


def folder_level(folder: pathlib.Path) -> int:
    """`level2` -> 2; any other folder name -> 0."""
    match = _LEVEL_DIR.match(folder.name)
    return int(match.group(1)) if match else 0


def level_of(path: pathlib.Path) -> int:
    return folder_level(path.parent)


def number_of(path: pathlib.Path) -> int | None:
    match = _LEADING_NUMBER.match(path.stem)
    return int(match.group(1)) if match else None


def make_id(level: int, number: int) -> str:
    return f"L{level}-{number:03d}"


def problem_id(path: pathlib.Path) -> str:
    number = number_of(path)
    return make_id(level_of(path), number) if number is not None else path.stem


def parse_id(text: str) -> tuple[int, int] | None:
    """`"L1-019"` -> `(1, 19)`; anything that is not an id -> None."""
    match = _ID.match(text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_level(text: str | int) -> int | None:
    """A level named as `1`, `"1"`, `"L1"` or `"level1"` -> 1; anything else -> None."""
    if isinstance(text, int):
        return text
    match = re.match(r"^(?:level|l)?(\d+)$", text.strip(), re.IGNORECASE)
    return int(match.group(1)) if match else None


def sort_key(path: pathlib.Path) -> tuple[int, int, str]:
    number = number_of(path)
    return (level_of(path), number if number is not None else 1 << 30, path.name)
