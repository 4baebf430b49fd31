"""The judge's own memory stays within its budget, and a device out-of-memory is charged to whoever
caused it: the candidate only when it held its share of the device."""

import pytest
import torch
from kbm_helpers import load
from kbm_kernels import candidate

GiB = 2**30


class _Held:
    """A stand-in for a prepared problem: only its size matters to the cache."""

    def __init__(self, nbytes: int):
        self.nbytes = nbytes


def test_the_cache_drops_the_least_recently_used_first():
    from kbmetal.evaluator.prepared import ReferenceCache

    cache = ReferenceCache()
    for name in ("a", "b", "c"):
        cache.get(name, lambda: _Held(4))
    cache.get("a", lambda: pytest.fail("a is kept: not made again"))  # a is now the most recent
    assert cache.trim(8) == 8
    assert cache.get("a", lambda: _Held(99)).nbytes == 4  # kept
    assert cache.get("c", lambda: _Held(99)).nbytes == 4  # kept
    assert cache.get("b", lambda: _Held(7)).nbytes == 7  # dropped: made anew
    assert cache.hits == 3 and cache.misses == 4


def test_a_problem_larger_than_the_budget_is_not_kept():
    from kbmetal.evaluator.prepared import ReferenceCache

    cache = ReferenceCache()
    cache.get("small", lambda: _Held(2))
    cache.get("huge", lambda: _Held(100))
    assert cache.trim(10) == 0 and len(cache) == 0
    cache.get("small", lambda: _Held(2))
    assert cache.trim(0) == 0 and len(cache) == 0  # a budget of nothing keeps nothing


def test_a_forgotten_trial_comes_back_the_same():
    from kbmetal.evaluator import EvalOptions, backends
    from kbmetal.evaluator.prepared import PreparedProblem

    instances = {"main": load("L1-001").instantiate("small")}
    prepared = PreparedProblem(instances, backends.resolve("sim"), EvalOptions(heldout=False), lambda: None)
    first_spec = prepared.plan[0]
    first = prepared.trial(first_spec)
    assert prepared.nbytes >= first.nbytes > 0
    prepared.forget(first_spec.name)
    again = prepared.trial(first_spec)
    assert again is not first
    assert all(torch.equal(a, b) for a, b in zip(first.inputs, again.inputs))
    assert torch.equal(first.outputs[0].tensor, again.outputs[0].tensor)


def test_a_judge_over_a_tiny_budget_still_judges_and_keeps_nothing():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(timing=False), cache_bytes=1) as judge:
        for _ in range(2):
            v = judge.evaluate(load("L1-001"), candidate("L1-001"), "sim")
            assert v.passed, v.reason
            assert judge.references.nbytes == 0


@pytest.mark.parametrize(
    "own, requested, judge_held, blame",
    [
        (1 * GiB, 1 * GiB, 2 * GiB, "others"),  # the device was full of someone else's memory
        (1 * GiB, 1 * GiB, 20 * GiB, "judge"),  # the judge held more than its budget
        (30 * GiB, 1 * GiB, 2 * GiB, "candidate"),  # the candidate held its share and more
        (1 * GiB, 60 * GiB, 2 * GiB, "candidate"),  # it asked for more than its share at once
    ],
)
def test_a_device_out_of_memory_is_charged_to_whoever_caused_it(own, requested, judge_held, blame):
    from kbmetal.evaluator.judge import oom_blame

    assert oom_blame(own, requested, 80 * GiB, judge_held, 10 * GiB) == blame


def test_the_failed_allocation_is_read_from_pytorchs_message():
    from kbmetal.evaluator.judge import _requested_bytes

    text = "CUDA out of memory. Tried to allocate 1024.00 MiB. GPU 0 has a total capacity of 79.18 GiB"
    assert _requested_bytes(text) == GiB
    assert _requested_bytes("Tried to allocate 1.50 GiB.") == 3 * GiB // 2
    assert _requested_bytes("something else") == 0


def test_the_worker_reports_a_device_out_of_memory_as_memory_with_the_devices_state():
    from kbmetal.evaluator import worker

    exc = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert worker._error_kind(exc, "runtime") == "memory"
    reply = worker._describe_error(exc, "memory")
    assert "device_memory" in reply  # None without a CUDA device, numbers with one
    assert worker._error_kind(ValueError("x"), "runtime") == "runtime"


def test_an_out_of_memory_that_is_not_the_candidates_is_judged_again(monkeypatch):
    """The first try ends with the harness's out-of-memory: the judge frees what it holds, judges
    once more, and the second verdict stands, saying it is a second try."""
    from kbmetal.evaluator import EvalOptions, Judge
    from kbmetal.evaluator import judge as judge_mod

    tries = []
    original = judge_mod._Evaluation._trials

    def trials(self):
        tries.append(self)
        if len(tries) == 1:
            self.not_the_candidates = "the device was full"
            raise self._fail("harness", "not the candidate's: the device was full")
        return original(self)

    monkeypatch.setattr(judge_mod._Evaluation, "_trials", trials)
    with Judge(EvalOptions(timing=False)) as judge:
        v = judge.evaluate(load("L1-001"), candidate("L1-001"), "sim")
    assert len(tries) == 2
    assert v.passed, v.reason
    assert "the device was full" in v.options["retried"]


def test_spares_cover_a_start_up_at_the_pace_of_candidates_and_no_more_than_will_come():
    from kbmetal.evaluator import Judge, backends
    from kbmetal.evaluator.judge import _MIN_GPU_SPARES

    judge = Judge(prestart=True, spare_limit=7)
    try:
        performance = type("GPU", (), {"is_performance": True})()
        assert judge._spare_depth(performance) == 7  # nothing measured yet: as many as allowed
        judge._startups, judge._paces = [6.0], [0.5]
        assert judge._spare_depth(performance) == 7  # 13 would cover it; the limit holds
        judge._paces = [10.0]  # candidates slower than a start-up
        assert judge._spare_depth(performance) == _MIN_GPU_SPARES  # slow candidates need few
        judge._upcoming = 1
        assert judge._spare_depth(performance) == 1  # one more candidate: one spare
        judge._upcoming = 0
        assert judge._spare_depth(performance) == 0
        judge._upcoming = None
        assert judge._spare_depth(backends.resolve("sim")) == 1  # the sim: one spare
    finally:
        judge.close()


def test_the_executor_tells_each_judge_how_many_candidates_are_still_to_come():
    from kbmetal.executors.local import LocalExecutor

    executor = LocalExecutor(concurrency=2, threads_per_judge=1)
    assert [executor._share(left) for left in (0, 1, 2, 3, 20)] == [0, 1, 1, 2, 10]


@pytest.mark.gpu
def test_on_a_full_gpu_a_modest_candidate_gets_the_harness_error_not_a_failure():
    """The GPU filled by the judge's process but for 6 GiB (room for the candidate's process): a
    candidate that asks for 16 GiB (more than other processes' exit could free for the second
    try: 8 GiB once passed that way) is not charged with the out-of-memory (a harness error, after a
    second try); on the emptied GPU the same candidate passes, and one that asks for the whole
    GPU is charged with its own."""
    import pathlib

    from kbmetal.evaluator import EvalOptions, Judge

    root = pathlib.Path(__file__).resolve().parents[2]
    solution = (root / "solutions" / "cuda" / "L1-012.py").read_text()
    marker = "        kernel = _KERNELS.get(x.dtype)\n"
    assert marker in solution

    def asking_for(nbytes: int) -> str:
        grab = f"        _scratch = torch.empty({nbytes}, dtype=torch.uint8, device=x.device)\n"
        return solution.replace(marker, grab + marker, 1)

    with Judge(EvalOptions(timing=False)) as judge:
        free, total = torch.cuda.mem_get_info()
        filler = torch.empty(max(0, free - 6 * GiB), dtype=torch.uint8, device="cuda")
        try:
            v = judge.evaluate("L1-012", asking_for(16 * GiB), "cuda", sizes="small")
        finally:
            del filler
            torch.cuda.empty_cache()
        assert not v.passed and v.error_kind == "harness", v.reason
        assert "not the candidate's" in v.reason and "retried" in v.options
        v = judge.evaluate("L1-012", asking_for(16 * GiB), "cuda", sizes="small")
        assert v.passed, v.reason
        v = judge.evaluate("L1-012", asking_for(total), "cuda", sizes="small")
        assert not v.passed and v.error_kind == "memory", v.reason
