"""Unbiased variance over the last dimension. The inputs have a mean well away from zero, which
punishes the one-pass E[x^2] - E[x]^2 formula."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.var(x, dim=-1, unbiased=True)


def get_inputs():
    return [3.0 + 2.0 * torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "reduction"
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000}}
