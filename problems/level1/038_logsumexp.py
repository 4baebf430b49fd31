"""log(sum(exp(x))) over the last dimension, which must be computed without overflow."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(x, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "reduction"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000}}
