"""Gated linear unit: one linear layer makes values and gates; out = values * sigmoid(gates)."""

import torch
import torch.nn as nn

BATCH = 2048
IN_FEATURES = 4096
OUT_FEATURES = 2048


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, gates = self.linear(x).chunk(2, dim=-1)
        return values * torch.sigmoid(gates)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 64, "IN_FEATURES": 128, "OUT_FEATURES": 64},
    "heldout": {"BATCH": 50, "IN_FEATURES": 100, "OUT_FEATURES": 65},
}
