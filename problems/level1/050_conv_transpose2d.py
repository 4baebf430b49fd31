"""Transposed 2D convolution that doubles height and width: kernel 4, stride 2, padding 1."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 128
OUT_CHANNELS = 64
HEIGHT = 128
WIDTH = 128


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 16, "OUT_CHANNELS": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 12, "OUT_CHANNELS": 6, "HEIGHT": 15, "WIDTH": 13},
}
