"""C = A @ B^T where B is stored as (N, K), the layout of nn.Linear's weight."""

import torch
import torch.nn as nn

M = 3072
K = 4096
N = 4096


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
        return a @ b_t.T


def get_inputs():
    return [torch.randn(M, K), torch.randn(N, K)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"M": 96, "K": 128, "N": 64},
    "heldout": {"M": 83, "K": 119, "N": 77},
}
