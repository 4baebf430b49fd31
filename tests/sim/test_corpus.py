"""The MSL kernel corpus (corpus.py) against PyTorch, on every backend the `target` fixture
selects (the sim here; the sim and Metal on a Mac)."""

import pytest

from .corpus import CASES

assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernel_matches_pytorch(target, case):
    lib = target.compile(case.source, **case.compile_kwargs)
    case.check(target, lib)
    target.sync()
