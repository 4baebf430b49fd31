"""Transposed convolution that doubles the resolution, a learned per-channel bias, tanh: the
last layer of an image decoder."""

import torch
import torch.nn as nn

BATCH = 16
IN_CHANNELS = 128
OUT_CHANNELS = 64
HEIGHT = 64
WIDTH = 64


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)
        self.bias = nn.Parameter(0.3 * torch.randn(out_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.deconv(x) + self.bias)


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 16, "OUT_CHANNELS": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 12, "OUT_CHANNELS": 6, "HEIGHT": 15, "WIDTH": 13},
}
