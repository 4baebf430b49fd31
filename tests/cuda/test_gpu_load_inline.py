"""A KernelBench-style solution that builds its kernel with torch.utils.cpp_extension.load_inline
is judged unchanged on the CUDA backend."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def judge():
    from kbmetal.evaluator.judge import Judge
    from kbmetal.evaluator.options import EvalOptions

    with Judge(EvalOptions(timing=False)) as j:
        yield j


LOAD_INLINE_RELU = r'''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <torch/extension.h>

__global__ void relu_kernel(const float* x, float* y, int64_t n) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

torch::Tensor relu_cuda(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int64_t n = x.numel();
    int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    relu_kernel<<<blocks, threads>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
cpp_source = "torch::Tensor relu_cuda(torch::Tensor x);"

relu = load_inline(name="kbmetal_test_relu", cpp_sources=cpp_source, cuda_sources=cuda_source,
                   functions=["relu_cuda"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return relu.relu_cuda(x.contiguous())
'''


def test_a_load_inline_solution_is_judged_unchanged(judge):
    verdict = judge.evaluate("L1-012", LOAD_INLINE_RELU, "cuda", sizes="small")
    assert verdict.passed, f"{verdict.stage}: {verdict.reason}\n{verdict.log_tail[-2000:]}"
