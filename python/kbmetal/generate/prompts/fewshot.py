"""Few-shot examples: bundled solutions (solutions/metal, solutions/cuda) with their problems.

Never the solution to the problem being asked. Ids alone cannot tell (upstream KernelBench's
L1-019 is ReLU, ours is ELU), so an example is left out when its problem has the asked problem's
id in the same catalog, the same name once numbers and case are stripped (`19_ReLU`, `012_relu`),
or the same `Model` class. Among the rest: first the shortest example of the asked problem's
category, then the shortest of each other category, so that two examples show two techniques.
"""

from __future__ import annotations

import functools
import pathlib
from dataclasses import dataclass

from .reference import model_signature, plain_name, shown_source

MAX_EXAMPLE_CHARS = 7000  # longer solutions cost more tokens than they teach
_LANGUAGE = {"metal": "metal", "cuda": "cuda"}


@dataclass(frozen=True)
class Example:
    problem_id: str
    name: str
    category: str | None
    path: pathlib.Path  # the problem file
    reference: str  # the problem as a prompt shows it
    solution: str


def bundled_examples(style: str) -> tuple[Example, ...]:
    """Every bundled solution of the style's language whose problem loads."""
    from ...solutions import bundled_dir

    language = _LANGUAGE.get(style)
    return _examples_in(str(bundled_dir(language))) if language else ()


@functools.lru_cache(maxsize=8)
def _examples_in(folder_name: str) -> tuple[Example, ...]:
    from ...problems import ProblemError, find_problem
    from ...problems.ids import parse_id

    folder = pathlib.Path(folder_name)
    if not folder.is_dir():
        return ()
    examples = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith(("_", ".")) or parse_id(path.stem) is None:
            continue
        try:
            solution = path.read_text(encoding="utf-8")
            problem = find_problem(path.stem)
        except (OSError, UnicodeDecodeError, ProblemError):
            continue
        if len(solution) > MAX_EXAMPLE_CHARS:
            continue
        examples.append(Example(problem.id, problem.name, problem.category, problem.path.resolve(),
                                shown_source(problem.source), solution.strip() + "\n"))
    return tuple(examples)


def _same_problem(example: Example, problem) -> bool:
    if example.path == pathlib.Path(problem.path).resolve():
        return True
    if plain_name(example.name) == plain_name(problem.name):
        return True
    asked = model_signature(problem.source)
    return asked is not None and asked == model_signature(example.reference)


def select_examples(problem, style: str, count: int) -> list[Example]:
    if count <= 0:
        return []
    pool = [e for e in bundled_examples(style) if not _same_problem(e, problem)]
    pool.sort(key=lambda e: (len(e.solution), e.problem_id))
    chosen: list[Example] = []
    same = [e for e in pool if problem.category and e.category == problem.category]
    if same:
        chosen.append(same[0])
    for example in pool:
        if len(chosen) >= count:
            break
        if example not in chosen and example.category not in {c.category for c in chosen}:
            chosen.append(example)
    return chosen[:count]
