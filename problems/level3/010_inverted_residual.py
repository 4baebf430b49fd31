"""MobileNetV2 inverted residual block: 1x1 expand-BN-ReLU6, depthwise 3x3-BN-ReLU6, 1x1
project-BN, plus the input. BatchNorms are in eval mode with non-trivial running statistics."""

import torch
import torch.nn as nn

BATCH = 64
CHANNELS = 64
EXPAND = 6
HEIGHT = 56
WIDTH = 56


def _inference_batchnorm(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(0.2 * torch.randn(channels))
        bn.running_var.copy_(0.2 + 0.3 * torch.rand(channels))
        bn.weight.copy_(1.0 + 0.2 * torch.randn(channels))
        bn.bias.copy_(0.2 * torch.randn(channels))
    return bn


class Model(nn.Module):
    def __init__(self, channels: int, expand: int):
        super().__init__()
        hidden = channels * expand
        self.block = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            _inference_batchnorm(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            _inference_batchnorm(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, channels, 1, bias=False),
            _inference_batchnorm(channels),
        )
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS, EXPAND]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 8, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "CHANNELS": 6, "EXPAND": 4, "HEIGHT": 15, "WIDTH": 13},
}
