"""Grouped 2D convolution with a non-square 3x7 kernel and matching padding (1, 3), 4 groups,
no bias."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 128
OUT_CHANNELS = 128
HEIGHT = 128
WIDTH = 256
GROUPS = 4


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(3, 7), padding=(1, 3), groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, GROUPS]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 16, "OUT_CHANNELS": 16, "HEIGHT": 24, "WIDTH": 24},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 12, "OUT_CHANNELS": 20, "HEIGHT": 23, "WIDTH": 19},
}
