"""ResNet bottleneck block at inference: 1x1 reduce-BN-ReLU, 3x3-BN-ReLU, 1x1 expand-BN,
identity shortcut, ReLU. BatchNorms are in eval mode with non-trivial running statistics."""

import torch
import torch.nn as nn

BATCH = 64
CHANNELS = 256
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
    def __init__(self, channels: int):
        super().__init__()
        inner = channels // 4
        self.reduce = nn.Conv2d(channels, inner, 1, bias=False)
        self.bn1 = _inference_batchnorm(inner)
        self.conv = nn.Conv2d(inner, inner, 3, padding=1, bias=False)
        self.bn2 = _inference_batchnorm(inner)
        self.expand = nn.Conv2d(inner, channels, 1, bias=False)
        self.bn3 = _inference_batchnorm(channels)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.reduce(x)))
        y = torch.relu(self.bn2(self.conv(y)))
        return torch.relu(self.bn3(self.expand(y)) + x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 32, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "CHANNELS": 24, "HEIGHT": 15, "WIDTH": 13},
}
