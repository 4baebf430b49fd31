"""Post-norm residual sublayer: layernorm(x + linear(x)), dropout omitted (inference)."""

import torch
import torch.nn as nn

BATCH = 2048
DIM = 4096


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.2 * torch.randn(dim))
            self.norm.bias.copy_(0.2 * torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear(x))


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 128}, "heldout": {"BATCH": 50, "DIM": 120}}
