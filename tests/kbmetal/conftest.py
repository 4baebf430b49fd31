"""Shared fixtures for the evaluator's tests: a judge reused across a test module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def judge():
    """A judge kept for a whole test module, its next worker always pre-started."""
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(trial_timeout=60, import_timeout=120), prestart=True) as j:
        yield j


@pytest.fixture(scope="module")
def lenient_judge():
    """Plain-PyTorch candidates: no kernel required, PyTorch ops allowed (partial mode)."""
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(require_kernel=False, strict=False, trial_timeout=60), prestart=True) as j:
        yield j
