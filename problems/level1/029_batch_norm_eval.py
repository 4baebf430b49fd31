"""BatchNorm2d in inference mode: per-channel (x - running_mean) / sqrt(running_var + eps),
then scale and shift. The running statistics are set to non-trivial values, and the module is in
eval mode, so the output does not depend on the batch and the reference is deterministic."""

import torch
import torch.nn as nn

BATCH = 32
CHANNELS = 64
HEIGHT = 256
WIDTH = 256


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        with torch.no_grad():
            self.bn.running_mean.copy_(0.5 * torch.randn(channels))
            self.bn.running_var.copy_(0.5 + torch.rand(channels))
            self.bn.weight.copy_(1.0 + 0.2 * torch.randn(channels))
            self.bn.bias.copy_(0.2 * torch.randn(channels))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, HEIGHT, WIDTH)]


def get_init_inputs():
    return [CHANNELS]


CATEGORY = "norm"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "CHANNELS": 16, "HEIGHT": 32, "WIDTH": 32},
    "heldout": {"BATCH": 3, "CHANNELS": 20, "HEIGHT": 30, "WIDTH": 27},
}
