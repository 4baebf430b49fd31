"""3x3 convolution, 2x2 max pooling, ReLU: one kernel that never writes the full-size conv output.

Each thread owns one pooled output pixel and computes the 2 x 2 block of convolution outputs under
it for 8 output channels, so the pooling is a max over four registers and the conv result that the
unfused chain writes and reads back (four times the size of the output) never leaves the chip. A
16 x 16 threadgroup covers a 32 x 32 block of conv outputs; each step stages 2 input channels' 34 x
34 patches (the block plus its one-pixel halo, zero outside the image: the padding) and the
matching weights in threadgroup memory, and a thread reads its 4 x 4 window of each patch once for
all 4 x 9 x 8 multiply-adds. Bias and ReLU commute with the max and are applied once per output.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constexpr constant uint TILE = 16;              // pooled outputs per side of a threadgroup's tile
constexpr constant uint PATCH = 2 * TILE + 2;   // the conv outputs under the tile, and their halo
constexpr constant uint OCB = 8;                // output channels per threadgroup
constexpr constant uint ICB = 2;                // input channels staged per step
constexpr constant uint THREADS = TILE * TILE;

kernel void conv3x3_maxpool2_relu(device const float* x [[buffer(0)]],
                                  device const float* w [[buffer(1)]],
                                  device const float* bias [[buffer(2)]],
                                  device float* y [[buffer(3)]],
                                  constant uint& C_in [[buffer(4)]],
                                  constant uint& C_out [[buffer(5)]],
                                  constant uint& H [[buffer(6)]],
                                  constant uint& W [[buffer(7)]],
                                  uint3 group [[threadgroup_position_in_grid]],
                                  uint2 t [[thread_position_in_threadgroup]],
                                  uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float patch[ICB][PATCH][PATCH];
    threadgroup float wt[OCB][ICB][9];
    const uint PH = H / 2, PW = W / 2;   // max_pool2d(kernel 2) drops an odd last row or column
    const uint cx0 = 2 * group.x * TILE, cy0 = 2 * group.y * TILE;   // first conv output of the tile
    const uint oc_blocks = (C_out + OCB - 1) / OCB;
    const uint n = group.z / oc_blocks, oc0 = (group.z % oc_blocks) * OCB;

    float acc[OCB][4] = {};   // [channel][conv output (dy, dx) = (q / 2, q % 2)]
    for (uint ic0 = 0; ic0 < C_in; ic0 += ICB) {
        for (uint e = tid; e < ICB * PATCH * PATCH; e += THREADS) {
            uint ci = e / (PATCH * PATCH), py = e / PATCH % PATCH, px = e % PATCH;
            int iy = int(cy0 + py) - 1, ix = int(cx0 + px) - 1;
            uint ic = ic0 + ci;
            bool inside = ic < C_in && iy >= 0 && iy < int(H) && ix >= 0 && ix < int(W);
            patch[ci][py][px] = inside ? x[((ulong(n) * C_in + ic) * H + iy) * W + ix] : 0.0f;
        }
        for (uint e = tid; e < OCB * ICB * 9; e += THREADS) {
            uint o = e / (ICB * 9), ci = e / 9 % ICB, k = e % 9;
            bool inside = oc0 + o < C_out && ic0 + ci < C_in;
            wt[o][ci][k] = inside ? w[((oc0 + o) * C_in + ic0 + ci) * 9 + k] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint ci = 0; ci < ICB; ++ci) {
            float v[4][4];   // the 4 x 4 window under this thread's 2 x 2 conv outputs
            for (uint r = 0; r < 4; ++r)
                for (uint c = 0; c < 4; ++c) v[r][c] = patch[ci][2 * t.y + r][2 * t.x + c];
            for (uint o = 0; o < OCB; ++o)
                for (uint q = 0; q < 4; ++q)
                    for (uint ky = 0; ky < 3; ++ky)
                        for (uint kx = 0; kx < 3; ++kx)
                            acc[o][q] = fma(v[q / 2 + ky][q % 2 + kx], wt[o][ci][3 * ky + kx], acc[o][q]);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }

    uint oy = group.y * TILE + t.y, ox = group.x * TILE + t.x;
    if (oy >= PH || ox >= PW) return;
    for (uint o = 0; o < OCB && oc0 + o < C_out; ++o) {
        float pooled = max(max(acc[o][0], acc[o][1]), max(acc[o][2], acc[o][3]));
        y[((ulong(n) * C_out + oc0 + o) * PH + oy) * PW + ox] = max(pooled + bias[oc0 + o], 0.0f);
    }
}
"""

_lib = metalrt.compile(SOURCE)
_TILE, _OCB = 16, 8


class ModelNew(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"conv3x3_maxpool2_relu: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        batch, c_in, h, w = x.shape
        c_out = self.conv.out_channels
        ph, pw = h // 2, w // 2
        y = torch.empty(batch, c_out, ph, pw, dtype=x.dtype, device=x.device)
        if y.numel():
            groups = ((pw + _TILE - 1) // _TILE, (ph + _TILE - 1) // _TILE, batch * ((c_out + _OCB - 1) // _OCB))
            _lib.conv3x3_maxpool2_relu(
                x, self.conv.weight, self.conv.bias, y, c_in, c_out, h, w, groups=groups, group_size=(_TILE, _TILE)
            )
        return y
