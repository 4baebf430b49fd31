"""A 3D tensor times a matrix: (B, L, K) @ (K, N) -> (B, L, N), one weight for every batch."""

import torch
import torch.nn as nn

BATCH = 16
L = 1024
K = 1024
N = 2048


class Model(nn.Module):
    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, w)


def get_inputs():
    return [torch.randn(BATCH, L, K), torch.randn(K, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "L": 32, "K": 64, "N": 48},
    "heldout": {"BATCH": 3, "L": 45, "K": 50, "N": 70},
}
