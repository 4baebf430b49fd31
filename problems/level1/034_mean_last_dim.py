"""Mean over the last (contiguous) dimension."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 8192


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "reduction"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000}}
