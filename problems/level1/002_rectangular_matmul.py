"""Rectangular matrix multiplication: (M, K) @ (K, N) with three different extents."""

import torch
import torch.nn as nn

M = 2048
K = 4096
N = 3072


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"M": 64, "K": 128, "N": 96},
    "heldout": {"M": 75, "K": 133, "N": 91},
}
