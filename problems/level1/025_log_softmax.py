"""Log-softmax over the last dimension: x - logsumexp(x), which must not overflow for large x."""

import torch
import torch.nn as nn

BATCH = 8192
DIM = 16384


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "softmax"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1500}}
