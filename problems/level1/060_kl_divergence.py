"""KL divergence per sample, KL(target || softmax(logits)), from raw logits and a target
distribution whose rows sum to 1."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
CLASSES = 4096


class Model(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_q = F.log_softmax(logits, dim=-1)
        return F.kl_div(log_q, target, reduction="none").sum(dim=-1)


def get_inputs():
    return [torch.randn(BATCH, CLASSES), torch.softmax(torch.randn(BATCH, CLASSES), dim=-1)]


def get_init_inputs():
    return []


CATEGORY = "loss"
INPUT_DOMAINS = {1: "probability"}
PRESETS = {"small": {"BATCH": 64, "CLASSES": 512}, "heldout": {"BATCH": 50, "CLASSES": 700}}
