"""A three-layer MLP: Linear, ReLU, Linear, ReLU, Linear."""

import torch
import torch.nn as nn

BATCH = 1024
IN_FEATURES = 1024
HIDDEN = 4096
OUT_FEATURES = 1024


class Model(nn.Module):
    def __init__(self, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, HIDDEN, OUT_FEATURES]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 16, "IN_FEATURES": 64, "HIDDEN": 128, "OUT_FEATURES": 32},
    "heldout": {"BATCH": 13, "IN_FEATURES": 50, "HIDDEN": 100, "OUT_FEATURES": 30},
}
