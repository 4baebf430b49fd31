"""Maxout: a linear layer makes PIECES candidates per output; the output is their maximum."""

import torch
import torch.nn as nn

BATCH = 2048
IN_FEATURES = 4096
OUT_FEATURES = 1024
PIECES = 4


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features * pieces)
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return y.view(y.shape[0], -1, self.pieces).amax(dim=-1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES, PIECES]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 64, "IN_FEATURES": 128, "OUT_FEATURES": 32},
    "heldout": {"BATCH": 50, "IN_FEATURES": 100, "OUT_FEATURES": 30, "PIECES": 3},
}
