"""Linear logits times a learned scalar scale, then log-softmax over the classes."""

import torch
import torch.nn as nn

BATCH = 2048
IN_FEATURES = 4096
CLASSES = 4096


class Model(nn.Module):
    def __init__(self, in_features: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, classes)
        self.logit_scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.linear(x) * self.logit_scale, dim=-1)


def get_inputs():
    return [torch.randn(BATCH, IN_FEATURES)]


def get_init_inputs():
    return [IN_FEATURES, CLASSES]


CATEGORY = "fusion"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 64, "IN_FEATURES": 128, "CLASSES": 128},
    "heldout": {"BATCH": 50, "IN_FEATURES": 100, "CLASSES": 130},
}
