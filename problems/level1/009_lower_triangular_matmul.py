"""tril(A) @ B: only the lower triangle of A takes part, so half the multiply-adds can be
skipped."""

import torch
import torch.nn as nn

N = 4096


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tril(a) @ b


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []


CATEGORY = "matmul"
DTYPES = ("float32", "float16")
PRESETS = {"small": {"N": 128}, "heldout": {"N": 111}}
