"""LeakyReLU with a configurable negative slope."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def __init__(self, negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [0.05]


CATEGORY = "activation"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 128, "DIM": 512}, "heldout": {"BATCH": 97, "DIM": 1003}}
