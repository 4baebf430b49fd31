"""Problem-file sources shared by the problem-library tests."""

RELU = """
    import torch
    import torch.nn as nn

    batch_size = 64
    dim = 256

    class Model(nn.Module):
        def forward(self, x):
            return torch.relu(x)

    def get_inputs():
        return [torch.randn(batch_size, dim)]

    def get_init_inputs():
        return []
"""
