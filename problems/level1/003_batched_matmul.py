"""Batched matrix multiplication: B independent (M, K) @ (K, N) products."""

import torch
import torch.nn as nn

BATCH = 64
M = 512
K = 1024
N = 512


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.bmm(a, b)


def get_inputs():
    return [torch.randn(BATCH, M, K), torch.randn(BATCH, K, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "M": 32, "K": 64, "N": 48},
    "heldout": {"BATCH": 3, "M": 37, "K": 70, "N": 41},
}
