"""Huber loss per sample (delta 1): quadratic for small errors, linear for large ones, averaged
over features."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def __init__(self, delta: float):
        super().__init__()
        self.delta = delta

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(prediction, target, reduction="none", delta=self.delta).mean(dim=1)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [1.0]


CATEGORY = "loss"
PRESETS = {"small": {"BATCH": 64, "DIM": 512}, "heldout": {"BATCH": 50, "DIM": 700}}
