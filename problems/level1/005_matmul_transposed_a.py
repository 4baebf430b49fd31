"""C = A^T @ B where A is stored as (K, M): the kernel reads A column by column."""

import torch
import torch.nn as nn

M = 3072
K = 4096
N = 4096


class Model(nn.Module):
    def forward(self, a_t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a_t.T @ b


def get_inputs():
    return [torch.randn(K, M), torch.randn(K, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"M": 96, "K": 128, "N": 64},
    "heldout": {"M": 70, "K": 129, "N": 83},
}
