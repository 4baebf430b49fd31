"""One decoding step of multi-head attention against a KV cache: project the new token to a
query, attend over the LENGTH cached keys and values, project back. Bound by reading the
cache; the cache is an input, so nothing is carried between calls."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
HEADS = 32
LENGTH = 2048
HEAD_DIM = 128


class Model(nn.Module):
    def __init__(self, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(heads * head_dim, heads * head_dim, bias=False)
        self.out_proj = nn.Linear(heads * head_dim, heads * head_dim, bias=False)

    def forward(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        b, d = x.shape
        q = self.q_proj(x).view(b, self.heads, 1, d // self.heads)
        y = F.scaled_dot_product_attention(q, k_cache, v_cache)
        return self.out_proj(y.reshape(b, d))


def get_inputs():
    cache = (BATCH, HEADS, LENGTH, HEAD_DIM)
    return [torch.randn(BATCH, HEADS * HEAD_DIM), torch.randn(cache), torch.randn(cache)]


def get_init_inputs():
    return [HEADS, HEAD_DIM]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "HEADS": 2, "LENGTH": 64, "HEAD_DIM": 32},
    "heldout": {"BATCH": 3, "HEADS": 3, "LENGTH": 50, "HEAD_DIM": 24},
}
