"""GroupNorm: statistics over each group of CHANNELS / GROUPS channels and all positions."""

import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 64
GROUPS = 8
HEIGHT = 256
WIDTH = 256


class Model(nn.Module):
    def __init__(self, groups: int, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.2 * torch.randn(channels))
            self.norm.bias.copy_(0.2 * torch.randn(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [GROUPS, CHANNELS]


CATEGORY = "norm"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "CHANNELS": 16, "GROUPS": 4, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 3, "CHANNELS": 24, "GROUPS": 6, "HEIGHT": 30, "WIDTH": 27},
}
