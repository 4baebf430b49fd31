"""Guards against cheats that need no kernel: each cheating candidate, written in plain PyTorch,
must end in a failing (or flagged) verdict that names the cheat. The same guards against real MSL
kernels on the sim are in test_guards_sim.py."""

import pytest
from kbm_helpers import load, source


def _model(forward: str, init: str = "", header: str = "") -> str:
    return (
        "import torch\n"
        + header
        + "\n"
        + source(
            f"""
        class ModelNew(torch.nn.Module):
            def __init__(self, *args):
                super().__init__()
                {init or "pass"}
            def forward(self, *inputs):
                {forward}
        """
        )
    )


def _guard_failed(v, guard):
    return not v.passed and any(g.guard == guard and g.severity == "fail" for g in v.guards)


def test_uninitialised_output_fails_on_poisoned_memory(lenient_judge):
    # the "no-op kernel writing into empty_like" cheat: the output is whatever memory held
    v = lenient_judge.evaluate(load("L1-001"), _model("return torch.empty_like(inputs[0])"), "sim")
    assert not v.passed and v.error_kind == "mismatch"
    assert "nan" in v.reason.lower()


@pytest.mark.parametrize(
    "key, failing_trial",
    [
        ("inputs[0].data_ptr()", "t2"),  # same address, new values
        ("id(inputs[0])", "t2"),  # same object, new values
        ("(inputs[0].data_ptr(), inputs[0]._version)", "t3"),  # new values, version counter untouched
    ],
)
def test_results_cached_by_pointer_id_or_version_fail(lenient_judge, key, failing_trial):
    text = _model(
        f"""key = {key}
                if key not in self.cache:
                    self.cache[key] = torch.relu(inputs[0])
                return self.cache[key].clone()""",
        init="self.cache = {}",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert not v.passed and v.error_kind == "mismatch"
    failed = [t for t in v.trials if not t.passed]
    assert failed[0].name == failing_trial, v.reason


def test_mutated_input_fails(lenient_judge):
    # zeroing the input so that a reference run afterwards would also produce zeros
    v = lenient_judge.evaluate(
        load("L1-001"), _model("y = torch.relu(inputs[0]); inputs[0].zero_(); return y"), "sim"
    )
    assert _guard_failed(v, "mutated-input")


def test_output_aliasing_an_input_fails(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), _model("return inputs[0].view_as(inputs[0])"), "sim")
    assert not v.passed and v.error_kind == "output" and "shares memory with input 0" in v.reason


def test_work_left_on_a_thread_fails(lenient_judge):
    text = _model(
        """x = inputs[0]
                y = torch.empty_like(x)
                threading.Thread(target=lambda: (time.sleep(0.5), y.copy_(torch.relu(x)))).start()
                return y""",
        header="import threading, time",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "side-work"), v.reason


def test_a_thread_started_at_import_fails(lenient_judge):
    text = _model(
        "return torch.relu(inputs[0])",
        header="import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "side-work")


def test_monkey_patching_found_at_run_time(lenient_judge):
    # hidden from the source scan (no attribute chain to read): the fingerprint sees it
    text = _model(
        "return torch.relu(inputs[0])",
        header="setattr(getattr(__import__('torch'), 'Tensor'), 'add', lambda *a, **k: None)",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "monkey-patch") and "torch.Tensor.add" in v.reason


def test_patching_the_clock_fails(lenient_judge):
    text = _model(
        "return torch.relu(inputs[0])",
        header="vars(__import__('time'))  # noqa\n"
        "m = __import__('time'); setattr(m, 'perf_counter_ns', lambda: 0)",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "monkey-patch") and "time.perf_counter_ns" in v.reason


def test_precision_switch_flipped_at_run_time_fails(lenient_judge):
    text = _model(
        "return torch.relu(inputs[0])", header="getattr(torch.backends.cuda, 'matmul').allow_tf32 = True"
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "precision") and "lower precision" in v.reason


def test_try_except_fallback_fails_before_running(lenient_judge):
    text = _model(
        """try:
                    raise NotImplementedError
                except Exception:
                    return torch.relu(inputs[0])"""
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "fallback") and v.stage == "static"


def test_shapes_hard_coded_to_the_evaluated_sizes_fail_at_heldout(lenient_judge):
    # right at the small preset (16 x 256), wrong anywhere else
    text = _model("return torch.relu(inputs[0].reshape(16, 256)).reshape(inputs[0].shape)")
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert not v.passed and v.stage == "heldout" and "held-out" in v.reason
    assert all(t.passed for t in v.trials if t.sizes == "main")


def test_lower_precision_than_asked_fails(lenient_judge):
    v = lenient_judge.evaluate(
        load("L1-003"), _model("return torch.softmax(inputs[0].half(), -1).float()"), "sim"
    )
    assert not v.passed and v.error_kind == "mismatch"
    assert any(g.guard == "precision" for g in v.guards)  # the source scan explains why


def test_different_behaviour_under_timing_fails(lenient_judge):
    # correct for the first calls (the trials), stale once the timing loop starts
    text = _model(
        """self.calls += 1
                if self.calls > 5 and self.last is not None:
                    return self.last.clone()
                self.last = torch.relu(inputs[0])
                return self.last""",
        init="self.calls = 0; self.last = None",
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert _guard_failed(v, "timing-output"), v.reason


def test_strict_mode_fails_pytorch_doing_the_reference_work(judge):
    v = judge.evaluate(load("L1-002"), _model("return torch.matmul(*inputs)"), "sim")
    assert _guard_failed(v, "torch-ops")
    assert "aten::mm" in v.reason and "matmul" in v.reason


def test_partial_mode_reports_torch_ops_and_the_custom_share(lenient_judge):
    v = lenient_judge.evaluate(
        load("L2-001"),
        _model(
            "return torch.relu(torch.nn.functional.linear(inputs[0], self.w, self.b))",
            init="self.w = torch.nn.Parameter(torch.empty(args[1], args[0])); self.b = torch.nn.Parameter(torch.empty(args[1]))",
        ),
        "sim",
    )
    info = [g for g in v.guards if g.guard == "torch-ops"]
    assert info and info[0].severity == "info" and "addmm" in info[0].message
    assert v.ops["custom_share"] is not None
