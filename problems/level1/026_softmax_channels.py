"""Softmax over the channel dimension of a (BATCH, CHANNELS, LENGTH) tensor: the reduced
dimension is strided, not contiguous."""

import torch
import torch.nn as nn

BATCH = 64
CHANNELS = 256
LENGTH = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, LENGTH)]


def get_init_inputs():
    return []


CATEGORY = "softmax"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "CHANNELS": 64, "LENGTH": 256},
    "heldout": {"BATCH": 3, "CHANNELS": 70, "LENGTH": 300},
}
