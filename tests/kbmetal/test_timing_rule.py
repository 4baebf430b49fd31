"""The timing loop's stopping rule: a stable median stops it after `min_runs`; a noisy one runs
on to the budget or `max_runs`, never past them."""

import itertools

import pytest
from kbmetal.evaluator.timing import DeviceTiming, measure, median_is_stable


class _Scripted(DeviceTiming):
    """Times taken from a script, on a clock that advances by them (no real time passes)."""

    def __init__(self, times):
        self._times = itertools.cycle(times)
        self.now_ns = 0
        self.calls = 0

    def time_call(self, fn):
        fn()
        self.calls += 1
        ms = next(self._times)
        self.now_ns += int(ms * 1e6)
        return ms

    def clock(self):
        return self.now_ns


def _measure(timing, **plan):
    return measure(timing, lambda: None, subject="s", warmup=0, clock=timing.clock, **plan)


def test_the_median_is_stable_when_its_confidence_interval_is_narrow():
    assert median_is_stable([1.0, 1.001, 0.999, 1.0, 1.002, 0.998] * 4, 0.01)
    assert not median_is_stable([1.0, 1.5, 0.6, 1.2, 0.8, 1.4] * 4, 0.01)
    assert not median_is_stable([1.0] * 5, 0.01)  # too few runs to say
    assert not median_is_stable([1.0] * 30, 0.0)  # the rule turned off


def test_agreeing_runs_stop_at_min_runs():
    timing = _Scripted([2.0, 2.01, 1.99])
    result, times = _measure(timing, min_runs=20, max_runs=500, budget_ms=1000.0, stable_within=0.01)
    assert len(times) == 20 == result.runs
    assert result.median_ms == pytest.approx(2.0)


def test_noisy_runs_go_on_until_the_budget():
    timing = _Scripted([1.0, 3.0, 0.5, 2.0, 4.0])  # a spread no median settles within 1% of
    result, times = _measure(timing, min_runs=20, max_runs=500, budget_ms=100.0, stable_within=0.01)
    assert 20 < len(times) < 500
    assert sum(times[:-1]) < 100.0 <= sum(times)  # stopped by the first run past the budget


def test_max_runs_bounds_everything_and_min_runs_comes_first():
    timing = _Scripted([1.0, 3.0, 0.5, 2.0, 4.0])
    _, times = _measure(timing, min_runs=20, max_runs=30, budget_ms=1e9, stable_within=0.01)
    assert len(times) == 30
    _, times = _measure(_Scripted([5.0]), min_runs=3, max_runs=3, budget_ms=0.0, stable_within=0.0)
    assert len(times) == 3  # the sim's plan: exactly its runs
