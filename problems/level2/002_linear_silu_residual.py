"""Residual SiLU block: x + silu(linear(x)), square weight."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 2048
DIM = 4096


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.silu(self.linear(x))


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 128}, "heldout": {"BATCH": 50, "DIM": 120}}
