"""Squeeze-and-excitation: global average pool, a bottleneck MLP (ReLU, sigmoid), and the
input scaled channel by channel with the result."""

import torch
import torch.nn as nn

BATCH = 128
CHANNELS = 256
REDUCTION = 4
HEIGHT = 64
WIDTH = 64


class Model(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))
        return x * weights[:, :, None, None]


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS, REDUCTION]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 32, "HEIGHT": 16, "WIDTH": 16},
    "heldout": {"BATCH": 2, "CHANNELS": 24, "REDUCTION": 3, "HEIGHT": 15, "WIDTH": 13},
}
