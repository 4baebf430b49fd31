"""Feedback: each kind of verdict, compact, as the model's next message."""

from __future__ import annotations

from kbmetal.generate.feedback import Roofline, describe, roofline_for
from kbmetal.verdict import Comparison, GuardFinding, Timing, TrialResult, Verdict


def _verdict(**fields) -> Verdict:
    return Verdict(problem_id="L1-012", backend="cuda", device="test GPU", sizes="default", dtype="float32", **fields)


def _timing(ms, subject="candidate", profile=()):
    return Timing(subject=subject, method="cuda-events", is_performance=True, median_ms=ms, min_ms=ms, max_ms=ms,
                  iqr_ms=ms / 50, runs=100, warmup=5, profile=list(profile))


def test_compile_failure_shows_the_compilers_error_lines():
    log = "\n".join([f"note: candidate {i}" for i in range(40)] + [
        "kernel.metal:10:21: error: expected ';' at end of declaration",
        "   10 |     uint base = 4 * i",
        "      |                     ^",
    ])
    text = describe(_verdict(stage="import", error_kind="compile", compile_log=log,
                             reason="a kernel failed to compile: CompileError: kernel.metal:10"), attempt=2)
    assert text.startswith("# Verdict on your attempt 2")
    assert "FAILED at the import stage (compile)" in text
    assert "kernel.metal:10:21: error: expected ';'" in text and "uint base = 4 * i" in text
    assert "note: candidate 3" not in text  # the noise around the error stays out
    assert text.rstrip().endswith("```python code block.")


def test_mismatch_shows_where_and_by_how_much():
    comparison = Comparison(output=0, passed=False, shape=[4, 8], numel=32, mismatched=3, max_abs_error=0.5,
                            max_abs_index=[1, 2], max_rel_error=1.0, max_rel_index=[1, 2], atol=1e-5, rtol=1.3e-6,
                            margin=5e4, examples=[{"index": [1, 2], "got": 0.5, "expected": 0.0}])
    verdict = _verdict(stage="correctness", error_kind="mismatch", reason="trial t1 on normal inputs: values differ",
                       trials=[TrialResult("t1", "main", "normal", "fresh", False, [comparison])],
                       guards=[GuardFinding("torch-ops", "fail", "PyTorch ran the reference's work: aten::relu x1")])
    text = describe(verdict, attempt=1)
    assert "mismatched elements: 3 / 32" in text and "at index (1, 2)" in text
    assert "got 0.5, expected 0.0" in text
    assert "- [fail] torch-ops: PyTorch ran the reference's work" in text


def test_runtime_error_shows_the_end_of_the_traceback_and_heldout_a_hint():
    tail = "\n".join(["Traceback (most recent call last):"] + [f'  File "x.py", line {i}' for i in range(30)]
                     + ["metalrt.errors.ArgumentError: argument 2 ('n'): expected uint"])
    text = describe(_verdict(stage="correctness", error_kind="runtime", reason="forward raised", log_tail=tail),
                    attempt=1)
    assert "End of the log" in text and "argument 2 ('n'): expected uint" in text
    assert 'line 3"' not in text  # only the end
    held = describe(_verdict(stage="heldout", error_kind="mismatch", reason="at held-out sizes"), attempt=1)
    assert "handle every size" in held


def test_correct_kernel_gets_its_speed_and_where_the_time_goes():
    verdict = _verdict(passed=True, stage="complete", margin=0.02,
                       timing=_timing(0.5, profile=[{"kernel": "relu_f32", "total_ms": 0.4, "count": 1},
                                                    {"kernel": "copy", "total_ms": 0.1}]),
                       baselines={"eager": _timing(0.75, "eager"), "compile": _timing(0.4, "compile")},
                       ops={"custom_share": 0.6, "torch_compute_ms": 0.2, "ops": {"add": {}}})
    text = describe(verdict, attempt=3, roofline=Roofline(bytes=400_000_000, flops=100_000_000, peak_bandwidth_gbs=1000))
    assert "CORRECT (error margin 0.02" in text
    assert "PyTorch eager: 0.75 ms: yours is 1.50x faster" in text
    assert "torch.compile: 0.4 ms: yours is 1.25x slower" in text
    assert "kernel relu_f32: 0.4 ms (80% of kernel time), 1 launch" in text
    assert "only 60% of forward is in your kernels" in text
    assert "800 GB/s, 80% of the device's 1000 GB/s peak" in text and "near the memory bound" in text
    assert "Make it faster while keeping it correct" in text


def test_correct_kernel_on_the_sim_and_flags():
    timing = Timing(subject="candidate", method="cpu-clock (sim)", is_performance=False, median_ms=3, min_ms=3,
                    max_ms=3, iqr_ms=0, runs=3, warmup=1)
    text = describe(_verdict(passed=True, stage="complete", margin=0.0, timing=timing,
                             guards=[GuardFinding("speed-of-light", "flag", "faster than the hardware allows")]),
                    attempt=1)
    assert "not performance" in text and "Flagged for review" in text


def test_no_code_asks_for_the_module():
    text = describe(_verdict(stage="extract", error_kind="extract", reason="the response has no code block"), attempt=1)
    assert "No solution could be taken from your answer: the response has no code block" in text


def test_roofline_of_a_real_problem():
    from kbmetal.problems import find_problem

    problem = find_problem("L1-012")
    instance = problem.instantiate("small")
    verdict = _verdict(passed=True, timing=_timing(1.0), sizes_detail=dict(instance.sizes))
    bound = roofline_for(problem, verdict, 546.0)
    numel = instance.sizes["BATCH"] * instance.sizes["DIM"]
    assert bound is not None and bound.bytes >= 2 * numel * 4  # read x, write y
    assert roofline_for(problem, verdict, None) is None
