"""Sum over the middle dimension of (B, R, C): a column reduction, coalesced along C.

The reduced dimension is strided, so threads must not walk it alone with scattered reads. A
threadgroup takes 32 adjacent columns of one batch: lane j of every SIMD-group reads column j (32
consecutive floats per row, one coalesced load), and the 8 SIMD-groups split the rows between them
(rows s, s + 8, ...), each keeping a running sum in a register. The 8 partial sums of each column
are then combined through threadgroup memory after one barrier.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constexpr constant uint COLS = 32;    // columns per threadgroup: one per lane
constexpr constant uint SLICES = 8;   // SIMD-groups per threadgroup, each summing every 8th row

kernel void sum_middle(device const float* x [[buffer(0)]],
                       device float* y [[buffer(1)]],
                       constant uint& R [[buffer(2)]],
                       constant uint& C [[buffer(3)]],
                       uint2 group [[threadgroup_position_in_grid]],   // x: column block, y: batch
                       uint simd [[simdgroup_index_in_threadgroup]],
                       uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float partial[SLICES][COLS];
    const uint c = group.x * COLS + lane;
    device const float* in = x + ulong(group.y) * R * C;

    float s = 0.0f;
    if (c < C) {
        for (uint r = simd; r < R; r += SLICES) s += in[ulong(r) * C + c];
    }
    partial[simd][lane] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (simd == 0 && c < C) {
        float total = 0.0f;
        for (uint i = 0; i < SLICES; ++i) total += partial[i][lane];
        y[ulong(group.y) * C + c] = total;
    }
}
"""

_lib = metalrt.compile(SOURCE)
_COLS, _SLICES = 32, 8


class ModelNew(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"sum: float32 inputs are supported, got {x.dtype}")
        if x.dim() != 3 or self.dim not in (1, -2):
            raise ValueError(f"sum: this kernel reduces dim 1 of a 3-D tensor, got dim={self.dim} of {x.dim()}-D")
        x = x.contiguous()
        batch, rows, cols = x.shape
        y = torch.empty(batch, cols, dtype=x.dtype, device=x.device)
        if y.numel():
            _lib.sum_middle(x, y, rows, cols, groups=((cols + _COLS - 1) // _COLS, batch), group_size=32 * _SLICES)
        return y
