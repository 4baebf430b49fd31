"""The per-kernel profile a verdict carries (feedback for the next attempt: where the time goes)."""

import re

import pytest
from kbm_helpers import load
from kbm_kernels import candidate

from kbmetal.evaluator.timing import profile_call


@pytest.mark.parametrize("pid", ["L1-001", "L1-003", "L2-001"])
def test_a_passing_verdict_profiles_the_candidates_kernels(judge, pid):
    source = candidate(pid)
    v = judge.evaluate(load(pid), source, "sim")
    assert v.passed, v.reason
    declared = set(re.findall(r"kernel void (\w+)", source))
    profile = v.timing.profile
    assert profile, "no per-kernel profile in a passing verdict"
    assert {e["kernel"] for e in profile} <= declared
    for e in profile:
        assert e["backend"] == "sim" and e["clock"] == "host-wall"
        assert e["count"] >= 1 and e["total_ms"] >= 0 and e["mean_ms"] == pytest.approx(e["total_ms"] / e["count"])
    assert [e["total_ms"] for e in profile] == sorted((e["total_ms"] for e in profile), reverse=True)


def test_profile_call_counts_each_launch():
    import numpy as np

    import metalrt

    lib = metalrt.compile(
        "kernel void twice(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] *= 2; }",
        "sim",
    )
    y = np.ones(64, dtype=np.float32)

    def forward():
        for _ in range(3):
            lib.twice(y, threads=64)
        return y.copy()

    out, profile = profile_call(forward, lambda: metalrt.synchronize("sim"))
    assert (out == 8).all()
    assert [(e["kernel"], e["count"]) for e in profile] == [("twice", 3)]


def test_a_profile_left_open_by_candidate_code_gives_an_empty_profile_not_an_error():
    import metalrt

    calls = []
    with metalrt.profile():
        out, profile = profile_call(lambda: calls.append(1) or "result", lambda: None)
    assert (out, profile, calls) == ("result", [], [1])
