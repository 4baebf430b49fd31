"""1D max pooling: window 4, stride 2, padding 1."""

import torch
import torch.nn as nn

BATCH = 64
CHANNELS = 128
LENGTH = 32768


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.max_pool1d(x, kernel_size=4, stride=2, padding=1)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, LENGTH)]


def get_init_inputs():
    return []


CATEGORY = "pool"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "CHANNELS": 16, "LENGTH": 1024},
    "heldout": {"BATCH": 3, "CHANNELS": 12, "LENGTH": 999},
}
