"""2D max pooling: 3x3 window, stride 2, padding 1 (overlapping windows)."""

import torch
import torch.nn as nn

BATCH = 16
CHANNELS = 64
HEIGHT = 512
WIDTH = 512


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return []


CATEGORY = "pool"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 8, "HEIGHT": 64, "WIDTH": 64},
    "heldout": {"BATCH": 2, "CHANNELS": 6, "HEIGHT": 61, "WIDTH": 57},
}
