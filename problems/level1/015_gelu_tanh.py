"""GELU, tanh approximation (the GPT-2 form), spelled out as the formula."""

import math

import torch
import torch.nn as nn

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))
        return 0.5 * x * (1.0 + torch.tanh(inner))


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "activation"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 128, "DIM": 512}, "heldout": {"BATCH": 97, "DIM": 1003}}
