"""Vision-transformer stem: split the image into PATCH x PATCH patches with a strided conv,
flatten, prepend a class token, add learned position embeddings, LayerNorm."""

import torch
import torch.nn as nn

BATCH = 128
IMAGE = 224
PATCH = 16
DIM = 768


class Model(nn.Module):
    def __init__(self, image_size: int, patch: int, dim: int):
        super().__init__()
        patches = (image_size // patch) ** 2
        self.patchify = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, dim))
        self.position = nn.Parameter(0.02 * torch.randn(1, patches + 1, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.patchify(images).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return self.norm(torch.cat([cls, tokens], dim=1) + self.position)


def get_inputs():
    return [torch.randn(BATCH, 3, IMAGE, IMAGE)]


def get_init_inputs():
    return [IMAGE, PATCH, DIM]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 2, "IMAGE": 32, "PATCH": 8, "DIM": 64},
    "heldout": {"BATCH": 2, "IMAGE": 36, "PATCH": 6, "DIM": 48},
}
