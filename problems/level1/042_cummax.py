"""Running maximum along the last dimension (values)."""

import torch
import torch.nn as nn

BATCH = 16384
LENGTH = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x, dim=-1).values


def get_inputs():
    return [torch.randn(BATCH, LENGTH)]


def get_init_inputs():
    return []


CATEGORY = "scan"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "LENGTH": 1024}, "heldout": {"BATCH": 50, "LENGTH": 999}}
