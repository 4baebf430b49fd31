"""Cross-entropy per sample from logits and integer class labels (reduction 'none')."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
CLASSES = 8192


class Model(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, reduction="none")


def get_inputs():
    return [torch.randn(BATCH, CLASSES), torch.randint(0, CLASSES, (BATCH,))]


def get_init_inputs():
    return []


CATEGORY = "loss"
PRESETS = {"small": {"BATCH": 64, "CLASSES": 1024}, "heldout": {"BATCH": 50, "CLASSES": 1000}}
