"""A product with a tiny inner dimension: (M, K) @ (K, N) with K = 32. Writing the large
output dominates, so this is a memory-bound matmul."""

import torch
import torch.nn as nn

M = 16384
K = 32
N = 16384


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
    "small": {"M": 256, "K": 16, "N": 256},
    "heldout": {"M": 300, "K": 24, "N": 260},
}
