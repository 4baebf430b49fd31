"""Candidate modules the scripted models answer with: real MSL kernels for the bundled problem
L1-012 (ReLU), judged on the sim. Correct ones, and ones broken in the ways a model breaks them."""

from __future__ import annotations

PROBLEM = "L1-012"

_SCALAR = r"""
#include <metal_stdlib>
using namespace metal;

// variant: scalar
kernel void relu(device const float* x [[buffer(0)]],
                 device float* y [[buffer(1)]],
                 constant uint& n [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < n) y[i] = max(x[i], 0.0f);
}
"""

_VECTOR = r"""
#include <metal_stdlib>
using namespace metal;

// variant: vector4
kernel void relu(device const float* x [[buffer(0)]],
                 device float* y [[buffer(1)]],
                 constant uint& n [[buffer(2)]],
                 uint i [[thread_position_in_grid]]) {
    uint base = 4 * i;
    if (base + 4 <= n) {
        float4 v = *((device const float4*)(x + base));
        *((device float4*)(y + base)) = max(v, float4(0.0f));
    } else {
        for (uint k = base; k < n; ++k) y[k] = max(x[k], 0.0f);
    }
}
"""

# A candidate that would see an API key in its environment fails loudly: the keys test relies on it.
_ENV_CHECK = '''
import os

_seen = sorted(name for name, value in os.environ.items() if "PLANTED" in value)
if _seen:
    raise RuntimeError(f"an API key reached the candidate's environment: {_seen}")
try:
    with open(f"/proc/{os.getppid()}/environ", "rb") as _f:
        if b"PLANTED" in _f.read():
            raise RuntimeError("an API key is readable in the judge's /proc environ")
except OSError:
    pass
'''


def module(kernel: str = "scalar", *, env_check: bool = False) -> str:
    source = {"scalar": _SCALAR, "vector4": _VECTOR}[kernel]
    threads = "n" if kernel == "scalar" else "(n + 3) // 4"
    return f'''"""ReLU in MSL ({kernel})."""

import torch
import torch.nn as nn

import metalrt
{_ENV_CHECK if env_check else ""}
SOURCE = r"""{source}"""

_lib = metalrt.compile(SOURCE)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        if n:
            _lib.relu(x, y, n, threads={threads})
        return y
'''


def compile_error() -> str:
    """A missing semicolon: the sim's compiler reports it with a line number."""
    return module("scalar").replace("if (i < n) y[i] = max(x[i], 0.0f);", "if (i < n) y[i] = max(x[i], 0.0f)")


def wrong_values() -> str:
    """Compiles and runs, but clamps at 0.5 instead of 0: a mismatch with indices and values."""
    return module("scalar").replace("max(x[i], 0.0f)", "max(x[i], 0.5f)")
