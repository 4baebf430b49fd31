"""Suffix sums: out[i] = x[i] + x[i + 1] + ... along the last dimension."""

import torch
import torch.nn as nn

BATCH = 16384
LENGTH = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flip(torch.cumsum(torch.flip(x, dims=[-1]), dim=-1), dims=[-1])


def get_inputs():
    return [torch.randn(BATCH, LENGTH)]


def get_init_inputs():
    return []


CATEGORY = "scan"
PRESETS = {"small": {"BATCH": 64, "LENGTH": 1024}, "heldout": {"BATCH": 50, "LENGTH": 999}}
