"""Gated MLP (SwiGLU), the feed-forward of LLaMA-style models: down(silu(gate(x)) * up(x))."""

import torch
import torch.nn as nn
import torch.nn.functional as F

TOKENS = 2048
DIM = 2048
HIDDEN = 5632


class Model(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def get_inputs():
    return [torch.randn(TOKENS, DIM)]


def get_init_inputs():
    return [DIM, HIDDEN]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"TOKENS": 32, "DIM": 64, "HIDDEN": 176},
    "heldout": {"TOKENS": 27, "DIM": 48, "HIDDEN": 130},
}
