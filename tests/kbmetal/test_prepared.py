"""A judge prepares each problem once: inputs drawn where the reference runs, the references and
their tolerances kept for the problem's next candidates, within a memory budget."""

import pytest
import torch
from kbm_helpers import PROBLEMS, load
from kbm_kernels import candidate


def test_inputs_drawn_by_the_device_are_make_inputs_on_the_cpu():
    from kbmetal.evaluator.inputs import draw_inputs
    from kbmetal.problems import load_problems
    from kbmetal.problems.distributions import DISTRIBUTIONS

    problems = list(load_problems(PROBLEMS / "level1")) + list(load_problems(PROBLEMS / "level2"))
    for problem in problems:
        instance = problem.instantiate("small")
        for distribution in DISTRIBUTIONS:
            want = instance.make_inputs(987, distribution)
            got = draw_inputs(instance, 987, distribution, "cpu")
            assert len(got) == len(want)
            for a, b in zip(got, want):
                assert type(a) is type(b)
                if isinstance(a, torch.Tensor):
                    assert a.dtype == b.dtype and torch.equal(a, b), (problem.id, distribution)


def test_a_trial_reference_keeps_inputs_float64_outputs_and_calibrations():
    from kbmetal.evaluator import tolerance
    from kbmetal.evaluator.inputs import draw_inputs
    from kbmetal.evaluator.reference import Reference

    instance = load("L1-002").instantiate("small")
    inputs = draw_inputs(instance, 5, "normal", "cpu")
    kept = [x.clone() for x in inputs]
    reference = Reference(instance, "cpu", 3)
    trial = reference.compute(inputs, nudge_seed=9)
    assert all(torch.equal(a, b) for a, b in zip(inputs, kept))  # the inputs are left as they were
    (out,) = trial.outputs
    assert out.tensor.dtype == torch.float64 and out.dtype == torch.float32 and out.reference == "float64"
    native = reference.native_model(*inputs)
    # the calibration kept is the one compare() would make from PyTorch's own outputs
    with_natives = tolerance.compare(0, native, out.tensor, [native], torch.float32)
    kept_cal = tolerance.compare(0, native, out.tensor, None, torch.float32, calibration=out.calibration)
    assert kept_cal.passed and with_natives.passed
    assert kept_cal.atol >= with_natives.atol and kept_cal.rtol >= with_natives.rtol  # the nudge can only widen
    # the same seed gives the same reference: a dropped one can be recomputed exactly
    again = Reference(instance, "cpu", 3).compute(inputs, nudge_seed=9)
    assert torch.equal(again.outputs[0].tensor, out.tensor)
    assert again.outputs[0].calibration == out.calibration


def test_later_candidates_of_a_problem_reuse_its_references(judge):
    first = judge.evaluate(load("L1-003"), candidate("L1-003"), "sim")
    hits = judge.references.hits
    second = judge.evaluate(load("L1-003"), candidate("L1-003"), "sim")
    assert first.passed and second.passed, (first.reason, second.reason)
    assert judge.references.hits == hits + 1
    assert first.durations["reference"] > 0 and second.durations["reference"] < first.durations["reference"]
    assert [t.distribution for t in first.trials] == [t.distribution for t in second.trials]
    for part in ("exchange", "compare", "worker_wait", "compile"):
        assert part in second.durations
    assert second.options["exchange"] == "host"


def test_fresh_seeds_for_every_candidate_when_asked():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(reuse_references=False, timing=False)) as judge:
        for _ in range(2):
            assert judge.evaluate(load("L1-001"), candidate("L1-001"), "sim").passed
        assert len(judge.references) == 0 and judge.references.hits == 0


def test_the_cache_keeps_to_its_budget():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(timing=False), cache_bytes=0) as judge:
        assert judge.evaluate(load("L1-001"), candidate("L1-001"), "sim").passed
        assert len(judge.references) == 0  # over a budget of nothing: dropped after the verdict
    with Judge(EvalOptions(timing=False)) as judge:
        for pid in ("L1-001", "L1-004"):
            assert judge.evaluate(load(pid), candidate(pid), "sim").passed
        assert len(judge.references) == 2


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_problem_keys_differ_with_what_changes_the_references(share):
    from kbmetal.evaluator import EvalOptions
    from kbmetal.evaluator.prepared import problem_key

    problem = load("L1-001")
    options = EvalOptions(speed_of_light_slack=share)  # an option the references do not depend on
    key = problem_key(problem, "small", None, None, "sim", options)
    assert key == problem_key(problem, "small", None, None, "sim", EvalOptions())
    assert key != problem_key(problem, "heldout", None, None, "sim", options)
    assert key != problem_key(problem, "small", {"N": 7}, None, "sim", options)
    assert key != problem_key(problem, "small", None, "float16", "sim", options)
    assert key != problem_key(problem, "small", None, None, "sim", EvalOptions(trials=2))
