"""Attention probabilities: softmax(Q K^T * scale) for a batch of heads (no V product)."""

import math

import torch
import torch.nn as nn

BATCH_HEADS = 256
SEQ = 1024
HEAD_DIM = 64


class Model(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scores = torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(q.shape[-1]))
        return torch.softmax(scores, dim=-1)


def get_inputs():
    return [torch.randn(BATCH_HEADS, SEQ, HEAD_DIM), torch.randn(BATCH_HEADS, SEQ, HEAD_DIM)]


def get_init_inputs():
    return []


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH_HEADS": 4, "SEQ": 64, "HEAD_DIM": 32},
    "heldout": {"BATCH_HEADS": 3, "SEQ": 70, "HEAD_DIM": 40},
}
