"""Depthwise 3x3 convolution, BatchNorm in eval mode, HardSwish: the middle of a
MobileNetV3 block."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 32
CHANNELS = 64
HEIGHT = 256
WIDTH = 256


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        with torch.no_grad():
            self.bn.running_mean.copy_(0.2 * torch.randn(channels))
            self.bn.running_var.copy_(0.2 + 0.3 * torch.rand(channels))
            self.bn.weight.copy_(1.0 + 0.2 * torch.randn(channels))
            self.bn.bias.copy_(0.2 * torch.randn(channels))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(self.bn(self.conv(x)))


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 8, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 2, "CHANNELS": 6, "HEIGHT": 30, "WIDTH": 27},
}
