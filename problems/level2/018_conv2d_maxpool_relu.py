"""3x3 convolution, 2x2 max pooling, ReLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
IN_CHANNELS = 64
OUT_CHANNELS = 128
HEIGHT = 128
WIDTH = 128


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(F.max_pool2d(self.conv(x), kernel_size=2))


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 8, "OUT_CHANNELS": 16, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 6, "OUT_CHANNELS": 12, "HEIGHT": 30, "WIDTH": 27},
}
