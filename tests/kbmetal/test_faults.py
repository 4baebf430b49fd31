"""Every way a candidate can break ends in a verdict with the reason and the log's tail; the
harness goes on to the next candidate."""

from kbm_helpers import load, source

RELU_OK = source(
    """
    import torch
    class ModelNew(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x)
    """
)


def _forward(body: str, header: str = "") -> str:
    return source(
        f"""
        import torch
        {header}
        class ModelNew(torch.nn.Module):
            def forward(self, x):
                {body}
        """
    )


def test_segfault_in_forward_is_a_crash_verdict(lenient_judge):
    v = lenient_judge.evaluate(
        load("L1-001"), _forward("import ctypes; ctypes.string_at(0); return x"), "sim"
    )
    assert not v.passed and v.error_kind == "crash" and v.stage == "correctness"
    assert "segmentation fault" in v.reason
    assert "Fatal Python error" in v.log_tail  # faulthandler's report from the worker


def test_exception_in_forward_reports_type_message_and_traceback(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), _forward("raise ValueError('kernel exploded')"), "sim")
    assert not v.passed and v.error_kind == "runtime" and v.stage == "correctness"
    assert "ValueError: kernel exploded" in v.reason
    assert "candidate.py" in v.log_tail and "line" in v.log_tail


def test_exit_during_forward_is_a_crash(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), _forward("import os; os._exit(3)"), "sim")
    assert not v.passed and v.error_kind == "crash" and "status 3" in v.reason


def test_sys_exit_at_import_is_an_import_error(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), "import sys\nsys.exit(4)\n", "sim")
    assert not v.passed and v.error_kind == "import" and v.stage == "import"
    assert "SystemExit" in v.reason


def test_import_error_and_missing_model_new(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), "import no_such_module_here\n", "sim")
    assert v.error_kind == "import" and "no_such_module_here" in v.reason
    v = lenient_judge.evaluate(
        load("L1-001"), "import torch\nclass Model(torch.nn.Module):\n    pass\n", "sim"
    )
    assert v.error_kind == "init" and "ModelNew" in v.reason


def test_constructor_error_is_an_init_verdict(lenient_judge):
    text = source(
        """
        import torch
        class ModelNew(torch.nn.Module):
            def __init__(self):
                super().__init__()
                raise RuntimeError("bad weights")
        """
    )
    v = lenient_judge.evaluate(load("L1-001"), text, "sim")
    assert not v.passed and v.error_kind == "init" and v.stage == "init" and "bad weights" in v.reason


def test_syntax_error_never_starts_a_worker(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), "def forward(:\n", "sim")
    assert not v.passed and v.error_kind == "syntax" and v.stage == "static" and "line 1" in v.reason


def test_hang_in_forward_times_out():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(require_kernel=False, strict=False, trial_timeout=3)) as judge:
        v = judge.evaluate(load("L1-001"), _forward("while True: pass"), "sim")
    assert not v.passed and v.error_kind == "timeout" and v.stage == "correctness"
    assert "limit of 3 s" in v.reason


def test_hang_at_import_times_out():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(require_kernel=False, strict=False, import_timeout=3)) as judge:
        v = judge.evaluate(load("L1-001"), "import time\ntime.sleep(600)\n", "sim")
    assert v.error_kind == "timeout" and v.stage == "import"


def test_runaway_memory_is_stopped_and_peak_recorded():
    from kbmetal.evaluator import EvalOptions, Judge

    body = "chunks = [torch.ones(64 << 20, dtype=torch.uint8) for _ in range(1 << 20)]"
    with Judge(EvalOptions(require_kernel=False, strict=False, memory_limit_mb=1024)) as judge:
        v = judge.evaluate(load("L1-001"), _forward(body), "sim")
    assert not v.passed and v.error_kind == "memory"
    assert "limit of 1024 MiB" in v.reason
    assert v.peak_memory_bytes is not None and v.peak_memory_bytes > 1024 << 20


def test_wrong_shape_dtype_and_structure_are_output_errors(lenient_judge):
    problem = load("L1-001")
    v = lenient_judge.evaluate(problem, _forward("return torch.relu(x)[:, :-1]"), "sim")
    assert v.error_kind == "output" and "shape" in v.reason
    v = lenient_judge.evaluate(problem, _forward("return torch.relu(x).double()"), "sim")
    assert v.error_kind == "output" and "dtype float64, expected float32" in v.reason
    v = lenient_judge.evaluate(problem, _forward("return (torch.relu(x), x)"), "sim")
    assert v.error_kind == "output" and "tuple" in v.reason


def test_a_good_candidate_passes_after_failures(lenient_judge):
    v = lenient_judge.evaluate(load("L1-001"), RELU_OK, "sim")
    assert v.passed, v.reason
    assert v.stage == "complete" and v.max_abs_error == 0.0
    assert [t.name for t in v.trials] == ["t1", "t2", "t3", "t4", "heldout"]
    assert v.timing is not None and not v.timing.is_performance and v.speedup is None
    assert v.peak_memory_bytes and v.peak_memory_bytes > 0


def test_work_folders_of_dead_judges_are_swept(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from kbmetal.evaluator.session import sweep_stale_workdirs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"kbmetal-eval-{dead.stdout.strip()}-abc"
    live = tmp_path / f"kbmetal-eval-{os.getpid()}-def"
    stale.mkdir()
    live.mkdir()
    assert sweep_stale_workdirs() == 1
    assert not stale.exists() and live.exists()
