"""The evaluator on an NVIDIA GPU: real timings, eager and torch.compile baselines, speedups, the
speed-of-light bound, and the launch guard for kernels that do not go through metalrt."""

import pathlib

import pytest

pytestmark = pytest.mark.gpu

ROOT = pathlib.Path(__file__).resolve().parents[2]

TRITON_RELU = """
import torch
import triton
import triton.language as tl


@triton.jit
def _relu(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(y_ptr + offsets, tl.maximum(x, 0.0), mask=mask)


class ModelNew(torch.nn.Module):
    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        _relu[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y
"""

TORCH_RELU = """
import torch
class ModelNew(torch.nn.Module):
    def forward(self, x):
        return x.clamp(min=0)
"""


@pytest.fixture(scope="module")
def judge():
    from kbmetal.evaluator import EvalOptions, Judge

    with Judge(EvalOptions(budget_ms=500), prestart=True) as j:
        yield j


def test_bundled_cuda_solution_is_timed_against_both_baselines(judge):
    source = (ROOT / "solutions" / "cuda" / "L1-012.py").read_text()
    v = judge.evaluate("L1-012", source, "cuda")
    assert v.passed, f"{v.reason}\n{v.log_tail[-2000:]}"
    assert v.sizes == "default" and v.timing.is_performance and v.timing.runs >= 20
    assert set(v.baselines) == {"eager", "compile"}
    assert v.speedup is not None and v.speedup > 0 and v.speedup_compile is not None
    assert not any(g.guard == "speed-of-light" for g in v.guards)
    assert all(t.launches and t.launches > 0 for t in v.trials)


def test_a_triton_kernel_counts_as_a_kernel(judge):
    v = judge.evaluate("L1-012", TRITON_RELU, "cuda", sizes="small")
    assert v.passed, f"{v.reason}\n{v.log_tail[-2000:]}"
    assert all(t.launches and t.launches > 0 for t in v.trials)


def test_pytorch_alone_is_not_a_kernel(judge):
    v = judge.evaluate("L1-012", TORCH_RELU, "cuda", sizes="small")
    assert not v.passed and any(g.guard == "no-kernel" and g.severity == "fail" for g in v.guards), v.reason


def test_an_impossible_time_is_flagged():
    from kbmetal.evaluator.backends import resolve
    from kbmetal.evaluator.judge import _roofline_ms, speed_of_light_finding
    from kbmetal.problems import find_problem

    backend = resolve("cuda")
    instance = find_problem("L1-012").instantiate("default")
    bound = _roofline_ms(instance, backend)
    assert bound and bound > 0
    assert speed_of_light_finding(instance, backend, bound / 10, 0.9) is not None
