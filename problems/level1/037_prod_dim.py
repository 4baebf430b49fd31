"""Product over a short middle dimension. The inputs sit around 1 so that a product of 16 of
them neither vanishes nor overflows."""

import torch
import torch.nn as nn

BATCH = 4096
FACTORS = 16
DIM = 4096


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.prod(x, dim=1)


def get_inputs():
    return [1.0 + 0.25 * torch.randn(BATCH, FACTORS, DIM)]


def get_init_inputs():
    return []


CATEGORY = "reduction"
PRESETS = {
    "small": {"BATCH": 32, "FACTORS": 16, "DIM": 128},
    "heldout": {"BATCH": 30, "FACTORS": 12, "DIM": 100},
}
