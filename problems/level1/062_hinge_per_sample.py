"""Hinge loss per sample: mean over outputs of max(0, 1 - prediction * label), labels +-1.
The predictions are N(0, 1), so the hinge is active for most but not all elements."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def forward(self, prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - prediction * labels, min=0.0).mean(dim=1)


def get_inputs():
    labels = torch.randint(0, 2, (BATCH, DIM)).float() * 2.0 - 1.0
    return [torch.randn(BATCH, DIM), labels]


def get_init_inputs():
    return []


CATEGORY = "loss"
INPUT_DOMAINS = {1: "fixed"}  # +-1 labels stored as floats: never redrawn from another law
PRESETS = {"small": {"BATCH": 64, "DIM": 512}, "heldout": {"BATCH": 50, "DIM": 700}}
