"""A one-layer GRU over a sequence from a given initial state; returns every step's output.
The initial state is an input: nothing is carried between calls."""

import torch
import torch.nn as nn

BATCH = 64
SEQ = 128
INPUT_SIZE = 1024
HIDDEN = 1024


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, batch_first=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru(x, h0)
        return output


def get_inputs():
    return [torch.randn(BATCH, SEQ, INPUT_SIZE), torch.randn(1, BATCH, HIDDEN)]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 4, "SEQ": 16, "INPUT_SIZE": 32, "HIDDEN": 32},
    "heldout": {"BATCH": 3, "SEQ": 13, "INPUT_SIZE": 24, "HIDDEN": 40},
}
