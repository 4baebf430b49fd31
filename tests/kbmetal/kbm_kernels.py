"""Real MSL solutions of the fixture problems, and the cheats built from them.

`candidate(problem_id, forward=..., init=..., header=...)` writes a solution module: the kernels
below compiled with metalrt at import, a `compute(self, *inputs)` that solves the problem with
them, and a ModelNew whose forward is `forward` (by default: `return compute(self, *inputs)`).
A cheat replaces the forward (or adds a header) while keeping real kernel launches, so that each
guard is shown to catch the cheat even when kernels do run.
"""

from __future__ import annotations

import textwrap

MSL = r"""
#include <metal_stdlib>
using namespace metal;

kernel void relu(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                 constant uint& n [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    if (i < n) y[i] = max(x[i], 0.0f);
}

kernel void matmul(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                   device float* c [[buffer(2)]], constant uint& M [[buffer(3)]],
                   constant uint& K [[buffer(4)]], constant uint& N [[buffer(5)]],
                   uint2 gid [[thread_position_in_grid]]) {
    if (gid.x >= N || gid.y >= M) return;
    float acc = 0.0f;
    for (uint k = 0; k < K; ++k) acc = fma(a[gid.y * K + k], b[k * N + gid.x], acc);
    c[gid.y * N + gid.x] = acc;
}

kernel void softmax_rows(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                         constant uint& cols [[buffer(2)]], uint row [[thread_position_in_grid]]) {
    device const float* in = x + row * cols;
    device float* out = y + row * cols;
    float m = -INFINITY;
    for (uint j = 0; j < cols; ++j) m = max(m, in[j]);
    float s = 0.0f;
    for (uint j = 0; j < cols; ++j) s += exp(in[j] - m);
    for (uint j = 0; j < cols; ++j) out[j] = exp(in[j] - m) / s;
}

kernel void row_sum(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                    constant uint& cols [[buffer(2)]], uint row [[thread_position_in_grid]]) {
    float s = 0.0f;
    for (uint j = 0; j < cols; ++j) s += x[row * cols + j];
    y[row] = s;
}

kernel void linear_relu(device const float* x [[buffer(0)]], device const float* w [[buffer(1)]],
                        device const float* b [[buffer(2)]], device float* y [[buffer(3)]],
                        constant uint& IN [[buffer(4)]], constant uint& OUT [[buffer(5)]],
                        uint2 gid [[thread_position_in_grid]]) {
    if (gid.x >= OUT) return;
    float acc = b[gid.x];
    for (uint k = 0; k < IN; ++k) acc = fma(x[gid.y * IN + k], w[gid.x * IN + k], acc);
    y[gid.y * OUT + gid.x] = max(acc, 0.0f);
}

kernel void half_relu(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
    y[i] = float(max(half(x[i]), half(0.0h)));
}

kernel void copy(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) {
    y[i] = x[i];
}

kernel void matmul_half(device const float* a [[buffer(0)]], device const float* b [[buffer(1)]],
                        device float* c [[buffer(2)]], constant uint& M [[buffer(3)]],
                        constant uint& K [[buffer(4)]], constant uint& N [[buffer(5)]],
                        uint2 gid [[thread_position_in_grid]]) {
    if (gid.x >= N || gid.y >= M) return;
    half acc = 0.0h;
    for (uint k = 0; k < K; ++k) acc += half(a[gid.y * K + k]) * half(b[k * N + gid.x]);
    c[gid.y * N + gid.x] = float(acc);
}

kernel void softmax_rows_half(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                              constant uint& cols [[buffer(2)]], uint row [[thread_position_in_grid]]) {
    device const float* in = x + row * cols;
    device float* out = y + row * cols;
    half m = -INFINITY;
    for (uint j = 0; j < cols; ++j) m = max(m, half(in[j]));
    half s = 0.0h;
    for (uint j = 0; j < cols; ++j) s += exp(half(in[j]) - m);
    for (uint j = 0; j < cols; ++j) out[j] = float(exp(half(in[j]) - m) / s);
}

kernel void noop(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {}

kernel void zero(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = 0.0f; }
"""

_HELPERS = '''
import torch
import metalrt

lib = metalrt.compile(MSL, "sim")


def kernel_relu(x):
    y = torch.empty_like(x)
    lib.relu(x, y, x.numel(), threads=x.numel())
    return y


def kernel_matmul(a, b):
    M, K = a.shape
    N = b.shape[1]
    c = torch.empty(M, N, dtype=a.dtype)
    lib.matmul(a.contiguous(), b.contiguous(), c, M, K, N, threads=(N, M))
    return c


def kernel_softmax(x):
    y = torch.empty_like(x)
    lib.softmax_rows(x.contiguous(), y, x.shape[-1], threads=x.shape[0])
    return y


def kernel_row_sum(x):
    y = torch.empty(x.shape[0], dtype=x.dtype)
    lib.row_sum(x.contiguous(), y, x.shape[1], threads=x.shape[0])
    return y


def kernel_linear_relu(x, w, b):
    y = torch.empty(x.shape[0], w.shape[0], dtype=x.dtype)
    lib.linear_relu(x.contiguous(), w.contiguous(), b, y, w.shape[1], w.shape[0], threads=(w.shape[0], x.shape[0]))
    return y


def output_like(self, *inputs):
    """An empty tensor shaped as the problem's output."""
    return torch.empty_like(compute(self, *inputs))
'''

COMPUTE = {
    "L1-001": "kernel_relu(*inputs)",
    "L1-002": "kernel_matmul(*inputs)",
    "L1-003": "kernel_softmax(*inputs)",
    "L1-004": "kernel_row_sum(*inputs)",
    "L2-001": "kernel_linear_relu(inputs[0], self.linear.weight, self.linear.bias)",
}
TORCH = {
    "L1-001": "torch.relu(inputs[0])",
    "L1-002": "torch.matmul(*inputs)",
    "L1-003": "torch.softmax(inputs[0], -1)",
    "L1-004": "inputs[0].sum(1)",
    "L2-001": "torch.relu(torch.nn.functional.linear(inputs[0], self.linear.weight, self.linear.bias))",
}
INIT = {"L2-001": "self.linear = torch.nn.Linear(args[0], args[1])"}


def candidate(problem_id: str, forward: str | None = None, init: str = "", header: str = "") -> str:
    """A solution module for `problem_id`; `forward` is the body of forward (`inputs` in scope)."""
    body = textwrap.indent(textwrap.dedent(forward or "return compute(self, *inputs)").strip(), " " * 8)
    init_lines = "\n".join(line for line in (INIT.get(problem_id, ""), init) if line)
    init_body = textwrap.indent(textwrap.dedent(init_lines).strip() or "pass", " " * 8)
    return (
        f"MSL = r'''{MSL}'''\n"
        + _HELPERS
        + textwrap.dedent(header)
        + f"\n\ndef compute(self, *inputs):\n    return {COMPUTE[problem_id]}\n\n\n"
        + "class ModelNew(torch.nn.Module):\n"
        + "    def __init__(self, *args):\n        super().__init__()\n"
        + init_body
        + "\n\n    def forward(self, *inputs):\n"
        + body
        + "\n"
    )


def torch_expression(problem_id: str) -> str:
    return TORCH[problem_id]
