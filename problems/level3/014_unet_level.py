"""One level of a U-Net: conv-ReLU encoder, max-pool down, conv-ReLU at half resolution,
transposed-conv up, concatenate the skip connection, conv-ReLU decoder."""

import torch
import torch.nn as nn

BATCH = 8
IN_CHANNELS = 32
CHANNELS = 64
HEIGHT = 128
WIDTH = 128


class Model(nn.Module):
    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.encode = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.MaxPool2d(2)
        self.middle = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * channels, channels, 2, stride=2)
        self.decode = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.encode(x))
        y = torch.relu(self.middle(self.down(skip)))
        y = torch.cat([self.up(y), skip], dim=1)
        return torch.relu(self.decode(y))


def get_inputs():
    return [torch.randn(BATCH, IN_CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [IN_CHANNELS, CHANNELS]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 1, "IN_CHANNELS": 4, "CHANNELS": 8, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 1, "IN_CHANNELS": 3, "CHANNELS": 6, "HEIGHT": 30, "WIDTH": 26},
}
