"""fast_p and the geometric-mean speedup on hand-computed examples."""

import math

import pytest
from kbmetal.metrics import (
    ProblemResult,
    best_per_problem,
    fast_p,
    geometric_mean_speedup,
    summarize,
)


def _level1():
    # five problems: three correct (2.0x, 0.5x, 1.2x), one wrong but "fast", one crashed
    return [
        ProblemResult("L1-001", 1, True, 2.0, 1.5),
        ProblemResult("L1-002", 1, True, 0.5, 0.25),
        ProblemResult("L1-003", 1, True, 1.2, 0.9),
        ProblemResult("L1-004", 1, False, 3.0, 3.0),
        ProblemResult("L1-005", 1, False, None, None),
    ]


def test_fast_p_counts_failures_in_the_denominator():
    results = _level1()
    assert fast_p(results, 0.0) == pytest.approx(3 / 5)
    assert fast_p(results, 1.0) == pytest.approx(2 / 5)  # 2.0 and 1.2
    assert fast_p(results, 1.5) == pytest.approx(1 / 5)  # 2.0
    assert fast_p(results, 2.0) == pytest.approx(0 / 5)  # strictly greater: 2.0 does not count
    assert fast_p(results, 1.0, baseline="compile") == pytest.approx(1 / 5)  # only 1.5


def test_fast_p_with_an_explicit_denominator():
    # problems attempted but absent from the results (e.g. no candidate at all) still count
    assert fast_p(_level1(), 1.0, n=10) == pytest.approx(2 / 10)


def test_geometric_mean_over_correct_candidates_only():
    assert geometric_mean_speedup(_level1()) == pytest.approx((2.0 * 0.5 * 1.2) ** (1 / 3))
    assert geometric_mean_speedup(_level1(), "compile") == pytest.approx((1.5 * 0.25 * 0.9) ** (1 / 3))
    assert geometric_mean_speedup([ProblemResult("L1-001", 1, False, 5.0)]) is None


def test_best_candidate_per_problem():
    results = [
        ProblemResult("L1-001", 1, False, 9.0),
        ProblemResult("L1-001", 1, True, 1.1, margin=0.5),
        ProblemResult("L1-001", 1, True, 1.4, margin=0.9),
        ProblemResult("L1-002", 1, True, 1.0, margin=0.9),
        ProblemResult("L1-002", 1, True, 1.0, margin=0.1),
    ]
    best = {r.problem_id: r for r in best_per_problem(results)}
    assert best["L1-001"].speedup == 1.4
    assert best["L1-002"].margin == 0.1
    assert fast_p(results, 1.2) == pytest.approx(1 / 2)


def test_sim_timings_give_fast_0_only():
    results = [ProblemResult("L1-001", 1, True), ProblemResult("L1-002", 1, False)]
    assert fast_p(results, 0.0) == pytest.approx(1 / 2)
    assert fast_p(results, 1.0) is None
    assert geometric_mean_speedup(results) is None


def test_summary_per_level():
    results = _level1() + [ProblemResult("L2-001", 2, True, 4.0, 2.0), ProblemResult("L2-002", 2, False)]
    summary = summarize(results, ps=(0.0, 1.0))
    assert summary["all"]["problems"] == 7 and summary["all"]["correct"] == 4
    assert summary["all"]["fast_p"]["eager"][1.0] == pytest.approx(3 / 7)
    assert summary["L2"]["fast_p"]["eager"][0.0] == pytest.approx(1 / 2)
    assert summary["L2"]["geomean_speedup"]["eager"] == pytest.approx(4.0)
    assert math.isclose(summary["L1"]["fast_p"]["eager"][1.0], 2 / 5)
    assert list(summary) == ["all", "L1", "L2"]
