"""Embedding lookup: gather rows of a (VOCAB, DIM) table for a (BATCH, LENGTH) index tensor."""

import torch
import torch.nn as nn

VOCAB = 32768
DIM = 1024
BATCH = 64
LENGTH = 2048


class Model(nn.Module):
    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.table = nn.Embedding(vocab, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table(tokens)


def get_inputs():
    return [torch.randint(0, VOCAB, (BATCH, LENGTH))]


def get_init_inputs():
    return [VOCAB, DIM]


CATEGORY = "other"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"VOCAB": 1024, "DIM": 64, "BATCH": 4, "LENGTH": 64},
    "heldout": {"VOCAB": 999, "DIM": 72, "BATCH": 3, "LENGTH": 50},
}
