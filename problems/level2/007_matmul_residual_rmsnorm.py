"""A projection added to a residual stream, then RMSNorm: rmsnorm(residual + x @ W^T)."""

import torch
import torch.nn as nn

BATCH = 2048
DIM = 4096


class Model(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.proj = nn.Linear(dim, dim, bias=False)
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        h = residual + self.proj(x)
        return h * torch.rsqrt(h.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM, 1e-6]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 128}, "heldout": {"BATCH": 50, "DIM": 120}}
