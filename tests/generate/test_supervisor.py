"""The supervisor's rules on verdict records with performance timings, and the accounting of
tokens and cost."""

from __future__ import annotations

import pytest
from kbmetal.generate.accounting import Totals, Usage, combine, cost_usd
from kbmetal.generate.supervisor import Entry, choose, rank
from kbmetal.verdict import GuardFinding, Timing, Verdict


def _entry(cid, model, *, passed=True, ms=None, iqr=0.0, margin=0.1, stage=None, flag=False, performance=True):
    timing = None
    if ms is not None:
        timing = Timing(subject="candidate", method="test", is_performance=performance, median_ms=ms, min_ms=ms,
                        max_ms=ms, iqr_ms=iqr, runs=50, warmup=5)
    verdict = Verdict(problem_id="L1-001", backend="cuda", device="gpu", sizes="default", dtype="float32",
                      passed=passed, stage=stage or ("complete" if passed else "correctness"), margin=margin,
                      timing=timing, reason="" if passed else "trial t1: values differ",
                      guards=[GuardFinding("speed-of-light", "flag", "too fast")] if flag else [])
    return Entry(cid, model, 1, verdict)


def test_fastest_correct_wins_whatever_the_order():
    a, b = _entry(1, "a", ms=2.0), _entry(2, "b", ms=1.0)
    for entries in ([a, b], [b, a]):
        selection = choose("L1-001", entries)
        assert selection.chosen is b
        assert selection.reasons["ranking"][1]["why"] == "slower: 2 ms against 1 ms"


def test_ties_within_noise_go_to_the_smaller_margin():
    a = _entry(1, "a", ms=1.00, margin=0.5)
    b = _entry(2, "b", ms=1.02, margin=0.01)  # 2% slower: within the 3% tie share
    selection = choose("L1-001", [a, b])
    assert selection.chosen is b
    assert "smaller error margin" in selection.reasons["summary"]
    assert "larger error margin" in selection.reasons["ranking"][1]["why"]
    c = _entry(3, "c", ms=1.10, margin=0.0)  # 10% slower: not a tie, however accurate
    assert choose("L1-001", [a, c]).chosen is a
    noisy = _entry(4, "d", ms=1.10, iqr=0.3, margin=0.0)  # but within half of a wide spread it is
    assert choose("L1-001", [a, noisy]).chosen is noisy


def test_failed_and_flagged_candidates_are_never_chosen():
    wrong = _entry(1, "a", passed=False, ms=0.1)
    flagged = _entry(2, "b", ms=0.2, flag=True)
    slow = _entry(3, "c", ms=5.0)
    selection = choose("L1-001", [wrong, flagged, slow])
    assert selection.chosen is slow
    why = {r["model"]: r["why"] for r in selection.reasons["ranking"]}
    assert why["a"].startswith("failed at correctness")
    assert why["b"] == "flagged for review (speed-of-light)"
    assert choose("L1-001", [wrong]).chosen is None


def test_without_performance_timings_the_margin_decides():
    a = _entry(1, "a", ms=1.0, margin=0.3, performance=False)
    b = _entry(2, "b", ms=9.0, margin=0.1, performance=False)
    selection = choose("L1-001", [a, b])
    assert selection.chosen is b and not selection.reasons["timings_are_performance"]
    assert "speed did not decide" in selection.reasons["summary"]


def test_rank_orders_failures_by_how_far_they_got():
    compiled_not = _entry(1, "a", passed=False, stage="import")
    wrong_at_heldout = _entry(2, "b", passed=False, stage="heldout")
    correct = _entry(3, "c", ms=1.0)
    assert [e.model for e in rank([compiled_not, wrong_at_heldout, correct])] == ["c", "b", "a"]


def test_cost():
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000, reasoning_tokens=100_000)
    assert cost_usd(usage, 2.0, 8.0) == pytest.approx(6.0)
    assert cost_usd(usage, None, 8.0) is None  # a price is missing: unknown, not free
    assert cost_usd(Usage(), None, None) == 0.0


def test_totals_skip_cached_answers_and_keep_unknown_cost_unknown():
    t = Totals()
    t.add(usage=Usage(10, 20), cost=0.5, latency_s=1.0, cached=False, ok=True)
    t.add(usage=Usage(10, 20), cost=0.0, latency_s=0.0, cached=True, ok=True)
    assert (t.requests, t.cached, t.usage.total, t.cost) == (2, 1, 30, 0.5)
    u = Totals()
    u.add(usage=Usage(1, 1), cost=None, latency_s=0.1, cached=False, ok=True)
    assert combine([t, u]).cost is None and combine([t, u]).usage.total == 32
