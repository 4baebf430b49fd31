"""The judge's fast path on an NVIDIA GPU: inputs drawn and references computed on the device,
tensors moved to and from the candidate's process through CUDA IPC, guards unchanged."""

import pathlib

import pytest

pytestmark = pytest.mark.gpu

ROOT = pathlib.Path(__file__).resolve().parents[2]

ZEROES_ITS_INPUT = """
import torch
class ModelNew(torch.nn.Module):
    def forward(self, x):
        y = torch.relu(x)
        x.zero_()
        return y
"""


@pytest.fixture(scope="module")
def judge():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(budget_ms=200), prestart=True) as j:
        yield j


def test_inputs_are_drawn_on_the_gpu_repeatably():
    import torch
    from kbmetal.evaluator.inputs import draw_inputs
    from kbmetal.problems import find_problem

    instance = find_problem("L1-012").instantiate("small")
    for distribution in ("native", "normal", "offset_scaled", "heavy_tailed"):
        (a,) = draw_inputs(instance, 42, distribution, "cuda")
        (b,) = draw_inputs(instance, 42, distribution, "cuda")
        (c,) = draw_inputs(instance, 43, distribution, "cuda")
        assert a.is_cuda and a.dtype == torch.float32 and bool(torch.isfinite(a).all())
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_the_float64_reference_runs_on_the_gpu():
    import torch
    from kbmetal.evaluator.inputs import draw_inputs
    from kbmetal.evaluator.reference import Reference
    from kbmetal.problems import find_problem

    instance = find_problem("L1-001").instantiate("small")
    inputs = draw_inputs(instance, 1, "normal", "cuda")
    trial = Reference(instance, "cuda", 3, torch.cuda.synchronize, exact_device="cuda").compute(inputs, 5)
    (out,) = trial.outputs
    assert out.tensor.is_cuda and out.tensor.dtype == torch.float64 and out.calibration is not None


def test_a_bundled_solution_passes_with_tensors_moved_through_cuda_ipc(judge):
    source = (ROOT / "solutions" / "cuda" / "L1-012.py").read_text()
    v = judge.evaluate("L1-012", source, "cuda", sizes="small")
    assert v.passed, f"{v.reason}\n{v.log_tail[-2000:]}"
    assert v.options["exchange"] == "cuda", judge.cuda_exchange_failure
    assert {"reference", "exchange", "compare"} <= set(v.durations)
    again = judge.evaluate("L1-012", source, "cuda", sizes="small")
    assert again.passed and again.durations["reference"] < v.durations["reference"]


def test_a_mutated_input_is_seen_through_the_gpu_exchange():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(require_kernel=False, strict=False, timing=False)) as judge:
        v = judge.evaluate("L1-012", ZEROES_ITS_INPUT, "cuda", sizes="small")
    assert v.options.get("exchange") == "cuda"
    assert not v.passed and any(g.guard == "mutated-input" and g.severity == "fail" for g in v.guards), v.reason
