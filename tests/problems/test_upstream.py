"""Upstream KernelBench loads unchanged and its references run at automatic small sizes.

Runs only when KBMETAL_KERNELBENCH_DIR names a KernelBench checkout (its root, or its inner
KernelBench/ folder); nothing of upstream is part of this repository.
"""

import os
import pathlib

import pytest
import torch

from kbmetal.problems import ProblemError, auto_small, load_problem, problem_files


def _upstream_levels() -> list[pathlib.Path]:
    root = os.environ.get("KBMETAL_KERNELBENCH_DIR")
    if not root:
        return []
    root = pathlib.Path(root)
    inner = root / "KernelBench" if (root / "KernelBench" / "level1").is_dir() else root
    return [inner / f"level{n}" for n in (1, 2, 3)]


LEVELS = _upstream_levels()
FILES = [f for level in LEVELS if level.is_dir() for f in problem_files(level)]
pytestmark = pytest.mark.skipif(not LEVELS, reason="set KBMETAL_KERNELBENCH_DIR to a KernelBench checkout")


def test_all_three_levels_are_there():
    assert all(level.is_dir() for level in LEVELS), f"missing level folders under {LEVELS[0].parent}"
    assert len(FILES) >= 250


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_loads_and_runs_at_small_sizes(path):
    problem = load_problem(path)
    assert problem.id.startswith(f"L{path.parent.name[-1]}-")
    try:
        sizing = auto_small(problem)
        inst = problem.instantiate("small")
        with torch.no_grad():
            inst.make_model(0)(*inst.make_inputs(1))
    except ProblemError as exc:
        # allowed, if it says why: the file and the cause
        assert str(path.resolve()) in str(exc) and exc.cause
        pytest.skip(f"does not run here: {exc.cause}")
    assert inst.preset == "auto-small"
    if not sizing.within_budget:
        assert sizing.note  # says which sizes the file fixes
