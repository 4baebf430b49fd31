"""One LSTM step for a batch: from input x and state (h, c) to the new state, returned stacked
as (2, BATCH, HIDDEN) = [h', c']. The state is an input, so every call is independent."""

import torch
import torch.nn as nn

BATCH = 2048
INPUT_SIZE = 2048
HIDDEN = 2048


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h_next, c_next = self.cell(x, (h, c))
        return torch.stack([h_next, c_next])


def get_inputs():
    return [torch.randn(BATCH, INPUT_SIZE), torch.randn(BATCH, HIDDEN), torch.randn(BATCH, HIDDEN)]


def get_init_inputs():
    return [INPUT_SIZE, HIDDEN]


CATEGORY = "architecture"
DTYPES = ("float32", "float16")
PRESETS = {
    "small": {"BATCH": 16, "INPUT_SIZE": 64, "HIDDEN": 64},
    "heldout": {"BATCH": 13, "INPUT_SIZE": 50, "HIDDEN": 60},
}
