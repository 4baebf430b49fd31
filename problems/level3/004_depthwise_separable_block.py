"""Depthwise-separable block (MobileNetV1): depthwise 3x3-BN-ReLU, then pointwise 1x1-BN-ReLU.
BatchNorms are in eval mode with non-trivial running statistics."""

import torch
import torch.nn as nn

BATCH = 32
IN_CHANNELS = 128
OUT_CHANNELS = 256
HEIGHT = 112
WIDTH = 112


def _inference_batchnorm(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(0.2 * torch.randn(channels))
        bn.running_var.copy_(0.2 + 0.3 * torch.rand(channels))
        bn.weight.copy_(1.0 + 0.2 * torch.randn(channels))
        bn.bias.copy_(0.2 * torch.randn(channels))
    return bn


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.bn1 = _inference_batchnorm(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = _inference_batchnorm(out_channels)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.depthwise(x)))
        return torch.relu(self.bn2(self.pointwise(x)))


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, OUT_CHANNELS]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IN_CHANNELS": 16, "OUT_CHANNELS": 32, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "IN_CHANNELS": 12, "OUT_CHANNELS": 20, "HEIGHT": 15, "WIDTH": 13},
}
