"""GELU, exact form: x * Phi(x) with the normal CDF written through erf."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "activation"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 128, "DIM": 512}, "heldout": {"BATCH": 97, "DIM": 1003}}
