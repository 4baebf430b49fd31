"""SELU: scale * (max(0, x) + min(0, alpha * (exp(x) - 1))) with the fixed constants."""

import torch
import torch.nn as nn

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.selu(x)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "activation"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 128, "DIM": 512}, "heldout": {"BATCH": 97, "DIM": 1003}}
