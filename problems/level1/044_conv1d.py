"""1D convolution, kernel 5, 'same' padding."""

import torch
import torch.nn as nn

BATCH = 32
IN_CHANNELS = 128
OUT_CHANNELS = 256
LENGTH = 16384
KERNEL = 5


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, LENGTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, KERNEL]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 16, "OUT_CHANNELS": 32, "LENGTH": 1024},
    "heldout": {"BATCH": 3, "IN_CHANNELS": 12, "OUT_CHANNELS": 20, "LENGTH": 1000},
}
