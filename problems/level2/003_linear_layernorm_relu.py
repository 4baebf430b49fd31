"""Linear layer, LayerNorm over the features (learned affine), ReLU."""

import torch
import torch.nn as nn

BATCH = 2048
IN_FEATURES = 4096
OUT_FEATURES = 4096


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.2 * torch.randn(out_features))
            self.norm.bias.copy_(0.2 * torch.randn(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.linear(x)))


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, OUT_FEATURES]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 64, "IN_FEATURES": 128, "OUT_FEATURES": 128},
    "heldout": {"BATCH": 50, "IN_FEATURES": 100, "OUT_FEATURES": 130},
}
