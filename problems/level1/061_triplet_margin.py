"""Triplet margin loss per sample: max(d(a, p) - d(a, n) + margin, 0) with Euclidean d."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16384
DIM = 4096


class Model(nn.Module):
    def __init__(self, margin: float):
        super().__init__()
        self.margin = margin

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, reduction="none")


def get_inputs():
    return [torch.randn(BATCH, DIM), torch.randn(BATCH, DIM), torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [1.0]


CATEGORY = "loss"
PRESETS = {"small": {"BATCH": 64, "DIM": 512}, "heldout": {"BATCH": 50, "DIM": 700}}
