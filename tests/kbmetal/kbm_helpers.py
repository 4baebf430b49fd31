"""Helpers for the evaluator's tests: fixture problems and candidate sources."""

from __future__ import annotations

import pathlib
import textwrap

HERE = pathlib.Path(__file__).resolve().parent
PROBLEMS = HERE / "problems"


def problem_path(problem_id: str) -> pathlib.Path:
    level, number = problem_id[1], int(problem_id.split("-")[1])
    matches = sorted((PROBLEMS / f"level{level}").glob(f"{number:03d}_*.py"))
    assert len(matches) == 1, problem_id
    return matches[0]


def load(problem_id: str):
    from kbmetal.problems import load_problem

    return load_problem(problem_path(problem_id))


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip()
