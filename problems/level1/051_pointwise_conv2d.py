"""1x1 (pointwise) convolution: a matmul over channels at every pixel, in NCHW layout."""

import torch
import torch.nn as nn

BATCH = 32
IN_CHANNELS = 256
OUT_CHANNELS = 512
HEIGHT = 128
WIDTH = 128


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "conv"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 32, "OUT_CHANNELS": 64, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 24, "OUT_CHANNELS": 40, "HEIGHT": 15, "WIDTH": 13},
}
