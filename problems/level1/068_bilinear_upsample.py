"""Bilinear 2x upsampling (align_corners=False), as in decoder and segmentation heads."""

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 16
CHANNELS = 64
HEIGHT = 256
WIDTH = 256


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return []


CATEGORY = "other"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "CHANNELS": 4, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 2, "CHANNELS": 3, "HEIGHT": 30, "WIDTH": 27},
}
