"""Mean squared error per sample: mean over features of (prediction - target)^2, one value per
row. Not averaged over the whole batch: a single scalar over millions of elements barely moves
between seeds, which would let a kernel return a remembered number."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(prediction, target, reduction="none").mean(dim=1)


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "loss"
PRESETS = {"small": {"BATCH": 64, "DIM": 512}, "heldout": {"BATCH": 50, "DIM": 700}}
