"""Sum over the middle dimension of a (BATCH, ROWS, COLS) tensor: a strided reduction."""

import torch
import torch.nn as nn

BATCH = 256
ROWS = 4096
COLS = 256


class Model(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=self.dim)


def get_inputs():
    return [torch.randn(BATCH, ROWS, COLS)]


def get_init_inputs():
    return [1]


CATEGORY = "reduction"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 8, "ROWS": 128, "COLS": 64},
    "heldout": {"BATCH": 7, "ROWS": 100, "COLS": 65},
}
