"""L2 normalisation of each row: x / max(||x||_2, eps)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32768
DIM = 4096


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=1e-12)


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


CATEGORY = "norm"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000}}
