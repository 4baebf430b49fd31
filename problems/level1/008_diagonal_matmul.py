"""diag(d) @ B: scales row i of B by d[i]. Written as a matmul on purpose: a kernel must not
build the N x N diagonal matrix."""

import torch
import torch.nn as nn

N = 2048
M = 16384


class Model(nn.Module):
    def forward(self, d: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.diag(d) @ b


def get_inputs():
    return [torch.randn(N), torch.randn(N, M)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"N": 256, "M": 256}, "heldout": {"N": 300, "M": 257}}
