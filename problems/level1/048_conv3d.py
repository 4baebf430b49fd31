"""3D convolution, 3x3x3 kernel, padding 1."""

import torch
import torch.nn as nn

BATCH = 4
IN_CHANNELS = 32
OUT_CHANNELS = 64
DEPTH = 32
HEIGHT = 64
WIDTH = 64


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, DEPTH, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "IN_CHANNELS": 4, "OUT_CHANNELS": 8, "DEPTH": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 1, "IN_CHANNELS": 3, "OUT_CHANNELS": 5, "DEPTH": 7, "HEIGHT": 15, "WIDTH": 13},
}
