"""Scaled dot-product attention: softmax(Q K^T / sqrt(D)) V over HEADS heads."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
HEADS = 16
SEQ = 1024
HEAD_DIM = 64


class Model(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def get_inputs():
    shape = (BATCH, HEADS, SEQ, HEAD_DIM)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []


CATEGORY = "attention"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "HEADS": 2, "SEQ": 128, "HEAD_DIM": 32},
    "heldout": {"BATCH": 1, "HEADS": 3, "SEQ": 100, "HEAD_DIM": 40},
}
