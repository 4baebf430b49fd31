"""Transposed 3D convolution (stride 2), times a scale, clamped to [-1, 1]; the scale is chosen
so that the clamp cuts the tails, not most of the values."""

import torch
import torch.nn as nn

BATCH = 4
IN_CHANNELS = 64
OUT_CHANNELS = 32
DEPTH = 16
HEIGHT = 32
WIDTH = 32


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, scale: float):
        super().__init__()
        self.deconv = nn.ConvTranspose3d(in_channels, out_channels, 4, stride=2, padding=1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.deconv(x) * self.scale, -1.0, 1.0)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, DEPTH, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, 2.0]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "IN_CHANNELS": 8, "OUT_CHANNELS": 4, "DEPTH": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 1, "IN_CHANNELS": 6, "OUT_CHANNELS": 3, "DEPTH": 5, "HEIGHT": 7, "WIDTH": 9},
}
