"""Our problem set: every problem is well-formed, runs at its presets and passes lint."""

import json
import re

import pytest
import torch

from kbmetal.problems import load_problems, problem_files, problems_root
from kbmetal.problems.index import build_index, load_index, render, stale_entries
from kbmetal.problems.lint import lint_problem

FILES = problem_files(None)
PROBLEMS = {p.id: p for p in load_problems(None)}
INDEX = load_index()

LEVEL1_CATEGORIES = {
    "matmul", "activation", "softmax", "norm", "reduction", "scan", "conv", "pool", "loss", "attention",
}  # fmt: skip
M4_MS = (1.0, 15.0)
TWO_GIB = 2 * 1024**3


def test_the_set_is_big_enough_and_covers_the_categories():
    by_level = {level: [p for p in PROBLEMS.values() if p.level == level] for level in (1, 2, 3)}
    assert len(by_level[1]) >= 50 and len(by_level[2]) >= 30 and len(by_level[3]) >= 12
    assert LEVEL1_CATEGORIES <= {p.category for p in by_level[1]}
    assert {p.category for p in by_level[2]} == {"fusion"}
    assert {p.category for p in by_level[3]} == {"architecture"}
    assert len(PROBLEMS) == len(FILES)  # ids are unique


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_is_well_formed(path):
    assert re.fullmatch(r"\d{3}_[a-z0-9_]+\.py", path.name)
    problem = next(p for p in PROBLEMS.values() if p.path == path.resolve())
    assert problem.category is not None
    assert {"small", "heldout"} <= set(problem.presets)
    small, heldout = problem.presets["small"], problem.presets["heldout"]
    assert small != heldout
    values = [v for v in heldout.values() if isinstance(v, int) and v > 8]
    assert any(v & (v - 1) for v in values), "heldout needs a size that is not a power of two"


@pytest.mark.parametrize("problem_id", sorted(PROBLEMS))
def test_default_sizes_fit_the_budget(problem_id):
    cost = INDEX[problem_id]["cost"]
    assert M4_MS[0] <= cost["default"]["roofline_ms"]["m4max"] <= M4_MS[1]
    assert cost["default"]["bytes"] < TWO_GIB
    # small stays small: the sim runs a naive kernel on it in about a second
    assert cost["small"]["bytes"] <= 4 * 1024**2 and cost["small"]["flops"] <= 1e8


@pytest.mark.parametrize("problem_id", sorted(PROBLEMS))
def test_runs_at_its_presets_and_passes_lint(problem_id):
    problem = PROBLEMS[problem_id]
    for preset in ("small", "heldout"):
        inst = problem.instantiate(preset)
        with torch.no_grad():
            out = inst.make_model(0)(*inst.make_inputs(1))
        assert isinstance(out, torch.Tensor) and out.numel() > 0
        report = lint_problem(problem, preset)
        assert report.ok, [f"{f.check}: {f.message}" for f in report.findings]


def test_index_is_current():
    committed = json.loads((problems_root() / "index.json").read_text())
    current = json.loads(render(build_index()))
    stale = stale_entries(committed, current)
    assert not stale, f"problems/index.json is stale for {stale}: run python -m kbmetal.problems.index"
