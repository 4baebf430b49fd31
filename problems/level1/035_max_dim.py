"""Maximum over the middle dimension of a (BATCH, ROWS, COLS) tensor (values only)."""

import torch
import torch.nn as nn

BATCH = 256
ROWS = 4096
COLS = 256


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, ROWS, COLS)]


def get_init_inputs():
    return []


CATEGORY = "reduction"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 8, "ROWS": 128, "COLS": 64},
    "heldout": {"BATCH": 7, "ROWS": 100, "COLS": 65},
}
