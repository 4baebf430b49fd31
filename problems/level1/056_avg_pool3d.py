"""3D average pooling, 2x2x2 window, stride 2."""

import torch
import torch.nn as nn

BATCH = 8
CHANNELS = 32
DEPTH = 64
HEIGHT = 128
WIDTH = 128


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool3d(x, kernel_size=2, stride=2)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, DEPTH, HEIGHT, WIDTH)]


def get_init_inputs():
    return []


CATEGORY = "pool"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "CHANNELS": 4, "DEPTH": 16, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 1, "CHANNELS": 3, "DEPTH": 15, "HEIGHT": 30, "WIDTH": 27},
}
