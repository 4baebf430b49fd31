"""RMSNorm: x / sqrt(mean(x^2) + eps) * weight, over the last dimension."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * scale * self.weight


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, 1e-6]


CATEGORY = "norm"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000}}
