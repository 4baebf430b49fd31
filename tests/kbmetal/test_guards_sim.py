"""Every guard against real MSL kernels on the sim, each on at least three problems.

Each cheating candidate launches real kernels (so the "no kernel" guard alone could not catch
it) and must end in a failing verdict naming its guard. See kbm_kernels.py for the honest
solutions the cheats are built from; test_honest_kernels_pass shows those pass.
"""

import pytest
from kbm_helpers import load
from kbm_kernels import candidate, torch_expression

ALL = ["L1-001", "L1-002", "L1-003", "L1-004", "L2-001"]


def _fails(v, guard=None, kind=None):
    assert not v.passed, f"a cheat passed: {v.summary()}"
    if guard is not None:
        assert any(g.guard == guard and g.severity == "fail" for g in v.guards), (guard, v.reason, v.guards)
    if kind is not None:
        assert v.error_kind == kind, v.reason


@pytest.mark.parametrize("pid", ALL)
def test_honest_kernels_pass(judge, pid):
    v = judge.evaluate(load(pid), candidate(pid), "sim")
    assert v.passed, v.reason
    assert all(t.launches and t.launches > 0 for t in v.trials)
    assert v.margin is not None and v.margin <= 1
    assert v.ops["custom_share"] == pytest.approx(1.0, abs=0.2)


@pytest.mark.parametrize("pid", ["L1-001", "L1-003", "L1-004"])
def test_no_kernel_launched(judge, pid):
    # the module compiles its kernels but forward never launches one
    v = judge.evaluate(load(pid), candidate(pid, f"return {torch_expression(pid)}"), "sim")
    _fails(v, "no-kernel")


@pytest.mark.parametrize("pid", ["L1-002", "L1-003", "L2-001"])
def test_pytorch_doing_the_reference_work_behind_a_kernel(judge, lenient_judge, pid):
    cheat = candidate(
        pid,
        f"""
        ref = {torch_expression(pid)}
        y = torch.empty_like(ref)
        lib.copy(ref.contiguous(), y, threads=ref.numel())
        return y
        """,
    )
    v = judge.evaluate(load(pid), cheat, "sim")
    _fails(v, "torch-ops")
    # partial mode lets it through but says which ops ran and how little ran in kernels
    v = lenient_judge.evaluate(load(pid), cheat, "sim")
    info = [g for g in v.guards if g.guard == "torch-ops"]
    assert info and info[0].severity == "info"
    assert v.ops["custom_share"] is not None and v.ops["custom_share"] < 1.0


@pytest.mark.parametrize("pid", ["L1-001", "L1-003", "L1-004"])
def test_noop_kernel_into_empty_like_reads_stale_memory(judge, pid):
    # computes the right answer, frees it, then "writes" a no-op into a fresh empty_like that the
    # allocator may place on the freed answer: poisoned allocations make that fail
    cheat = candidate(
        pid,
        """
        y = output_like(self, *inputs)
        lib.noop(y, threads=y.numel())
        return y
        """,
    )
    _fails(judge.evaluate(load(pid), cheat, "sim"), kind="mismatch")


@pytest.mark.parametrize("pid", ["L1-001", "L1-002", "L2-001"])
@pytest.mark.parametrize(
    "key, trial", [("inputs[0].data_ptr()", "t2"), ("(id(inputs[0]), inputs[0]._version)", "t3")]
)
def test_results_cached_by_address_or_version(judge, pid, key, trial):
    cheat = candidate(
        pid,
        f"""
        key = {key}
        if key not in self.cache:
            self.cache[key] = compute(self, *inputs)
        cached = self.cache[key]
        y = torch.empty_like(cached)
        lib.copy(cached, y, threads=y.numel())  # a launch on every call, so only values give it away
        return y
        """,
        init="self.cache = {}",
    )
    v = judge.evaluate(load(pid), cheat, "sim")
    _fails(v, kind="mismatch")
    assert next(t for t in v.trials if not t.passed).name == trial


@pytest.mark.parametrize("pid", ["L1-001", "L1-003", "L1-004"])
def test_inputs_zeroed_in_place(judge, pid):
    cheat = candidate(
        pid,
        """
        y = compute(self, *inputs)
        lib.zero(inputs[0], threads=inputs[0].numel())
        return y
        """,
    )
    _fails(judge.evaluate(load(pid), cheat, "sim"), "mutated-input")


@pytest.mark.parametrize("pid", ["L1-001", "L1-002", "L1-004"])
def test_kernel_launched_from_a_thread_after_forward_returns(judge, pid):
    cheat = candidate(
        pid,
        """
        y = output_like(self, *inputs)
        def late():
            time.sleep(0.3)
            y.copy_(compute(self, *inputs))
        threading.Thread(target=late).start()
        return y
        """,
        header="import threading, time",
    )
    _fails(judge.evaluate(load(pid), cheat, "sim"), "side-work")


@pytest.mark.parametrize("pid", ["L1-001", "L1-003", "L2-001"])
@pytest.mark.parametrize(
    "patch, what",
    [
        (
            "setattr(getattr(torch, 'testing'), 'assert_close', lambda *a, **k: None)",
            "torch.testing.assert_close",
        ),
        ("setattr(__import__('time'), 'perf_counter_ns', lambda: 0)", "time.perf_counter_ns"),
        ("setattr(__import__('metalrt'), 'synchronize', lambda *a, **k: None)", "metalrt.synchronize"),
    ],
)
def test_monkey_patching_torch_the_timer_or_the_runtime(judge, pid, patch, what):
    v = judge.evaluate(load(pid), candidate(pid, header=patch), "sim")
    _fails(v, "monkey-patch")
    assert what in v.reason


@pytest.mark.parametrize("pid", ["L1-001", "L1-002", "L1-003"])
def test_try_except_fallback_to_the_reference(judge, pid):
    cheat = candidate(
        pid,
        f"""
        try:
            if inputs[0].shape[0] % 2:
                raise ValueError("odd sizes are hard")
            return compute(self, *inputs)
        except ValueError:
            return {torch_expression(pid)}
        """,
    )
    v = judge.evaluate(load(pid), cheat, "sim")
    _fails(v, "fallback")
    assert v.stage == "static"


HARD_CODED = {
    # launched at the small preset's sizes whatever the inputs are
    "L1-001": "y = torch.empty_like(inputs[0]); lib.relu(inputs[0], y, 16 * 256, threads=16 * 256); return y",
    "L1-002": "a, b = inputs; c = torch.empty(64, 32); lib.matmul(a, b, c, 64, 96, 32, threads=(32, 64)); return c",
    "L1-003": "y = torch.empty(8, 512); lib.softmax_rows(inputs[0], y, 512, threads=8); return y",
}


@pytest.mark.parametrize("pid", sorted(HARD_CODED))
def test_shapes_hard_coded_to_the_sizes_seen(judge, pid):
    v = judge.evaluate(load(pid), candidate(pid, HARD_CODED[pid]), "sim")
    assert not v.passed and v.stage == "heldout", v.reason
    assert all(t.passed for t in v.trials if t.sizes == "main")


LOW_PRECISION = {
    "L1-001": "y = torch.empty_like(inputs[0]); lib.half_relu(inputs[0], y, threads=inputs[0].numel()); return y",
    "L1-002": "a, b = inputs; c = torch.empty(a.shape[0], b.shape[1]); "
    "lib.matmul_half(a, b, c, a.shape[0], a.shape[1], b.shape[1], threads=(b.shape[1], a.shape[0])); return c",
    "L1-003": "y = torch.empty_like(inputs[0]); lib.softmax_rows_half(inputs[0], y, inputs[0].shape[1], "
    "threads=inputs[0].shape[0]); return y",
}


@pytest.mark.parametrize("pid", sorted(LOW_PRECISION))
def test_half_precision_kernel_for_a_float32_problem(judge, pid):
    v = judge.evaluate(load(pid), candidate(pid, LOW_PRECISION[pid]), "sim")
    _fails(v, kind="mismatch")
    assert v.margin > 1


@pytest.mark.parametrize("pid", ["L1-001", "L1-002", "L1-004"])
def test_stale_results_once_timing_starts(judge, pid):
    cheat = candidate(
        pid,
        """
        self.calls += 1
        if self.calls > 5 and self.last is not None:
            return self.last.clone()
        self.last = compute(self, *inputs)
        return self.last
        """,
        init="self.calls = 0\nself.last = None",
    )
    _fails(judge.evaluate(load(pid), cheat, "sim"), "timing-output")


@pytest.mark.parametrize("pid", ["L1-001", "L1-002", "L1-003"])
def test_speed_beyond_the_hardware_is_flagged(pid):
    # Sim timings are not performance, so the check runs on a device's figures: a time below the
    # roofline bound (bytes over peak bandwidth) is flagged for a human, a plausible one is not.
    from kbmetal.evaluator.backends import Backend
    from kbmetal.evaluator.judge import _roofline_ms, speed_of_light_finding

    gpu = Backend("metal", "mps", "Apple M4 Max", True, peak_bandwidth_gbs=546.0, peak_tflops=17.0)
    instance = load(pid).instantiate("default")
    bound = _roofline_ms(instance, gpu)
    assert bound and bound > 0
    flag = speed_of_light_finding(instance, gpu, bound / 10, 0.9)
    assert flag is not None and flag.severity == "flag" and flag.guard == "speed-of-light"
    assert speed_of_light_finding(instance, gpu, bound * 2, 0.9) is None


def test_timings_that_do_not_fit_the_judges_clock_fail():
    from kbmetal.evaluator.judge import envelope_problem
    from kbmetal.verdict import Timing

    runs = [1.0, 1.1, 0.9, 1.0]
    honest = Timing("candidate", "cpu-clock", False, 1.0, 0.9, 1.1, 0.1, 4, 1)
    assert envelope_problem(honest, runs, envelope_ms=10.0) is None
    # four runs of a millisecond cannot fit in half a millisecond of the judge's wall clock
    assert "exceed the judge's wall clock" in envelope_problem(honest, runs, envelope_ms=0.5)
    # a summary that claims a median the runs do not have
    forged = Timing("candidate", "cpu-clock", False, 0.01, 0.001, 0.02, 0.01, 4, 1)
    assert "does not match" in envelope_problem(forged, runs, envelope_ms=10.0)
    assert "does not match" in envelope_problem(honest, runs[:3], envelope_ms=10.0)
