"""Matrix-vector product: (M, K) @ (K,) -> (M,). Bound by reading the matrix once."""

import torch
import torch.nn as nn

M = 16384
K = 16384


class Model(nn.Module):
    def forward(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.mv(a, x)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"M": 256, "K": 512}, "heldout": {"M": 300, "K": 515}}
