"""Tall-skinny product: many rows against a small square-ish right-hand matrix."""

import torch
import torch.nn as nn

M = 131072
K = 256
N = 384


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"M": 2048, "K": 64, "N": 64},
    "heldout": {"M": 1500, "K": 50, "N": 70},
}
