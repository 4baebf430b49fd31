"""Candidate processes started ahead of need: the judge keeps its spares topped up, hands each
candidate a fresh one, and leaves no process behind."""

import os
import time

from kbm_helpers import load
from kbm_kernels import candidate


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_spares_are_kept_one_process_per_candidate_and_none_left_behind():
    from kbmetal.evaluator import EvalOptions, Judge

    seen = set()
    with Judge(EvalOptions(timing=False), prestart=2) as judge:
        for _ in range(3):
            verdict = judge.evaluate(load("L1-001"), candidate("L1-001"), "sim")
            assert verdict.passed, verdict.reason
            assert len(judge._spares) == 2
            assert all(s.backend == "sim" for s in judge._spares)
        seen.update(s.pid for s in judge._spares)
        for spare in judge._spares:  # once ready (its backend prepared), taking it costs no start-up
            spare.wait_ready()
        verdict = judge.evaluate(load("L1-001"), candidate("L1-001"), "sim")
        assert verdict.passed and verdict.durations["worker_wait"] < 0.5
    assert _wait_gone(seen) == []


def test_every_candidate_gets_a_process_of_its_own(judge):
    probe = candidate("L1-001").replace(
        "class ModelNew", "import os\nPID = os.getpid()\nclass ModelNew"
    ) + "\nprint('pid', PID, flush=True)\n"
    first = judge.evaluate(load("L1-001"), probe, "sim")
    second = judge.evaluate(load("L1-001"), probe, "sim")
    pids = [int(v.log_tail.split("pid ")[1].split()[0]) for v in (first, second)]
    assert pids[0] != pids[1]
    assert _wait_gone(pids) == []  # retired: ended off the judge's path, but ended


def test_an_executor_judge_adopts_the_processes_started_with_its_process():
    from kbmetal.evaluator.backends import best
    from kbmetal.executors import base

    base._EARLY_STARTED = False
    try:
        base._start_workers_early()
        early = [s.pid for s in base._EARLY]
        assert len(early) == (1 if best() == "sim" else 3)
        assert all(s.backend == best() for s in base._EARLY)  # each makes this machine's device ready
        judge = base._judge({"timing": False})
        assert not base._EARLY and [s.pid for s in judge._spares][:1] == early
        base._start_workers_early()  # once per process
        assert not base._EARLY
    finally:
        base.close_judge()
        base._EARLY_STARTED = False
    assert _wait_gone(early) == []
