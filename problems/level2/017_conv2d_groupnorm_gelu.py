"""3x3 convolution, GroupNorm, GELU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
IN_CHANNELS = 64
OUT_CHANNELS = 128
HEIGHT = 128
WIDTH = 128
GROUPS = 8


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.GroupNorm(groups, out_channels)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.2 * torch.randn(out_channels))
            self.norm.bias.copy_(0.2 * torch.randn(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(self.conv(x)))


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS, GROUPS]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 8, "OUT_CHANNELS": 16, "HEIGHT": 32, "WIDTH": 32, "GROUPS": 4},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 6, "OUT_CHANNELS": 12, "HEIGHT": 30, "WIDTH": 27, "GROUPS": 4},
}
