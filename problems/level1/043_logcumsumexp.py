"""Running log-sum-exp along the last dimension: a scan that needs a stable combine step."""

import torch
import torch.nn as nn

BATCH = 16384
LENGTH = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logcumsumexp(x, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, LENGTH)]


def get_init_inputs():
    return []


CATEGORY = "scan"
PRESETS = {"small": {"BATCH": 64, "LENGTH": 1024}, "heldout": {"BATCH": 50, "LENGTH": 999}}
