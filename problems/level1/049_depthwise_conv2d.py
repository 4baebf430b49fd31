"""Depthwise 2D convolution: one 3x3 filter per channel (groups = channels), padding 1."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 128
HEIGHT = 256
WIDTH = 256


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 16, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 2, "CHANNELS": 12, "HEIGHT": 30, "WIDTH": 27},
}
