"""A small image classifier: two conv-ReLU-maxpool stages, then two linear layers."""

import torch
import torch.nn as nn

BATCH = 1024
IMAGE = 64
HIDDEN = 256
CLASSES = 100


class Model(nn.Module):
    def __init__(self, image_size: int, hidden: int, classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * (image_size // 4) ** 2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def get_inputs():
    return [torch.randn(BATCH, 3, IMAGE, IMAGE)]


def get_init_inputs():
    return [IMAGE, HIDDEN, CLASSES]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "IMAGE": 32, "HIDDEN": 64, "CLASSES": 10},
    "heldout": {"BATCH": 3, "IMAGE": 28, "HIDDEN": 50, "CLASSES": 7},
}
