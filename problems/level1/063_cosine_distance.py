"""Cosine distance per row: 1 - <a, b> / (|a| |b|). The native inputs are correlated pairs,
so the distances spread over (0, 2) instead of all sitting near 1."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)


def get_inputs():
    a = torch.randn(BATCH, DIM)
    mix = torch.rand(BATCH, 1) * 2.0 - 1.0  # per-row correlation in (-1, 1)
    b = mix * a + torch.sqrt(1.0 - mix**2) * torch.randn(BATCH, DIM)
    return [a, b]


def get_init_inputs():
    return []


CATEGORY = "loss"
PRESETS = {"small": {"BATCH": 64, "DIM": 512}, "heldout": {"BATCH": 50, "DIM": 700}}
