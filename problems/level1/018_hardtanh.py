"""HardTanh: clamp to [min_val, max_val]; about 5% of N(0, 1) inputs land on a bound."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def __init__(self, min_val: float, max_val: float):
        super().__init__()
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [-2.0, 2.0]


CATEGORY = "activation"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 128, "DIM": 512}, "heldout": {"BATCH": 97, "DIM": 1003}}
