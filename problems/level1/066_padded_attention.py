"""Attention over variable-length keys: each batch item has its own number of valid keys (at
least half the sequence), given as a boolean mask; padded keys get no weight."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
HEADS = 16
SEQ = 1024
HEAD_DIM = 64


class Model(nn.Module):
    def forward(self, q, k, v, key_valid: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_valid[:, None, None, :])


def get_inputs():
    shape = (BATCH, HEADS, SEQ, HEAD_DIM)
    lengths = torch.randint(SEQ // 2, SEQ + 1, (BATCH,))
    key_valid = torch.arange(SEQ)[None, :] < lengths[:, None]
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape), key_valid]


def get_init_inputs():
    return []


CATEGORY = "attention"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "HEADS": 2, "SEQ": 128, "HEAD_DIM": 32},
    "heldout": {"BATCH": 3, "HEADS": 3, "SEQ": 100, "HEAD_DIM": 40},
}
