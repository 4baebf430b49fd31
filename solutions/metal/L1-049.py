"""Depthwise 3x3 convolution (one filter per channel), padding 1, with bias.

Each channel is its own small stencil, so the work is reading the input once and reusing each value
nine times. A 16 x 16 threadgroup stages one plane's 18 x 18 patch (its tile plus a one-pixel halo,
zero outside the image: that is the padding) in threadgroup memory with coalesced loads, keeps the
channel's nine weights in registers, and each thread computes one output pixel from the patch: every
input element comes from DRAM once per tile instead of nine times.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constexpr constant uint TILE = 16;          // output pixels per side of a threadgroup's tile
constexpr constant uint PATCH = TILE + 2;   // the tile and the halo of a 3x3 window

kernel void depthwise_conv3x3(device const float* x [[buffer(0)]],
                              device const float* w [[buffer(1)]],
                              device const float* bias [[buffer(2)]],
                              device float* y [[buffer(3)]],
                              constant uint& C [[buffer(4)]],
                              constant uint& H [[buffer(5)]],
                              constant uint& W [[buffer(6)]],
                              uint3 group [[threadgroup_position_in_grid]],   // z: image * C + channel
                              uint2 t [[thread_position_in_threadgroup]],
                              uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float patch[PATCH][PATCH];
    const uint ox0 = group.x * TILE, oy0 = group.y * TILE, plane = group.z, c = plane % C;
    device const float* in = x + ulong(plane) * H * W;

    for (uint e = tid; e < PATCH * PATCH; e += TILE * TILE) {
        int iy = int(oy0 + e / PATCH) - 1, ix = int(ox0 + e % PATCH) - 1;
        bool inside = iy >= 0 && iy < int(H) && ix >= 0 && ix < int(W);
        patch[e / PATCH][e % PATCH] = inside ? in[iy * W + ix] : 0.0f;
    }
    float k[9];
    for (uint i = 0; i < 9; ++i) k[i] = w[c * 9 + i];
    threadgroup_barrier(mem_flags::mem_threadgroup);

    uint oy = oy0 + t.y, ox = ox0 + t.x;
    if (oy >= H || ox >= W) return;
    float acc = bias[c];
    for (uint ky = 0; ky < 3; ++ky)
        for (uint kx = 0; kx < 3; ++kx) acc = fma(patch[t.y + ky][t.x + kx], k[3 * ky + kx], acc);
    y[ulong(plane) * H * W + oy * W + ox] = acc;
}
"""

_lib = metalrt.compile(SOURCE)
_TILE = 16


class ModelNew(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"depthwise_conv2d: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        batch, channels, h, w = x.shape
        y = torch.empty_like(x)
        if y.numel():
            groups = ((w + _TILE - 1) // _TILE, (h + _TILE - 1) // _TILE, batch * channels)
            _lib.depthwise_conv3x3(
                x, self.conv.weight, self.conv.bias, y, channels, h, w, groups=groups, group_size=(_TILE, _TILE)
            )
        return y
