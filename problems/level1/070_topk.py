"""The K largest values of each row, in descending order."""

import torch
import torch.nn as nn

BATCH = 32768
DIM = 8192
K = 8


class Model(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.topk(x, self.k, dim=-1, largest=True, sorted=True).values


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [K]


CATEGORY = "other"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"BATCH": 64, "DIM": 1024}, "heldout": {"BATCH": 50, "DIM": 1000, "K": 5}}
