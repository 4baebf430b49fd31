"""3D convolution, LeakyReLU, a learned per-channel bias."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 4
IN_CHANNELS = 32
OUT_CHANNELS = 64
DEPTH = 32
HEIGHT = 64
WIDTH = 64


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.bias = nn.Parameter(0.3 * torch.randn(out_channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.1) + self.bias


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, DEPTH, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "IN_CHANNELS": 4, "OUT_CHANNELS": 8, "DEPTH": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 1, "IN_CHANNELS": 3, "OUT_CHANNELS": 5, "DEPTH": 7, "HEIGHT": 15, "WIDTH": 13},
}
