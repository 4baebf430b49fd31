"""Argmax over the last dimension: one threadgroup per row, (value, index) reduced with SIMD-group ops.

Each thread scans its strided share of the row in float4 steps keeping the best (value, index),
preferring the lower index on ties as torch.argmax does. A SIMD-group then agrees on its best value
with simd_max and on the first index holding it with simd_min; the SIMD-groups' winners go through
threadgroup memory and one more simd_max / simd_min. The result is written as int64.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

inline void take(thread float& best, thread uint& at, float v, uint j) {
    if (v > best || (v == best && j < at)) {
        best = v;
        at = j;
    }
}

// The SIMD-group's best value and the lowest index holding it, in every lane.
inline void simd_argmax(thread float& best, thread uint& at) {
    float top = simd_max(best);
    at = simd_min(best == top ? at : UINT_MAX);
    best = top;
}

kernel void argmax_rows(device const float* x [[buffer(0)]],
                        device long* out [[buffer(1)]],
                        constant uint& cols [[buffer(2)]],
                        uint row [[threadgroup_position_in_grid]],
                        uint tid [[thread_position_in_threadgroup]],
                        uint threads [[threads_per_threadgroup]],
                        uint lane [[thread_index_in_simdgroup]],
                        uint simd [[simdgroup_index_in_threadgroup]],
                        uint simds [[simdgroups_per_threadgroup]]) {
    threadgroup float best_value[32];
    threadgroup uint best_index[32];
    device const float* in = x + ulong(row) * cols;
    uint vecs = (cols % 4 == 0) ? cols / 4 : 0;   // float4 loads need 16-byte aligned rows
    device const float4* in4 = (device const float4*)in;

    float best = -INFINITY;
    uint at = UINT_MAX;
    for (uint j = tid; j < vecs; j += threads) {
        float4 v = in4[j];
        take(best, at, v.x, 4 * j);
        take(best, at, v.y, 4 * j + 1);
        take(best, at, v.z, 4 * j + 2);
        take(best, at, v.w, 4 * j + 3);
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) take(best, at, in[j], j);

    simd_argmax(best, at);
    if (lane == 0) {
        best_value[simd] = best;
        best_index[simd] = at;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    best = lane < simds ? best_value[lane] : -INFINITY;
    at = lane < simds ? best_index[lane] : UINT_MAX;
    simd_argmax(best, at);
    if (tid == 0) out[row] = long(at);
}
"""

_lib = metalrt.compile(SOURCE)


def _group_size(cols: int) -> int:
    """Up to four float4 per thread and 256 threads: whole SIMD-groups, none idle on short rows."""
    return min(256, max(32, (cols // 16 + 31) // 32 * 32))


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"argmax: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        cols = x.shape[-1]
        out = torch.empty(x.shape[:-1], dtype=torch.int64, device=x.device)
        rows = out.numel()
        if rows and cols:
            _lib.argmax_rows(x, out, cols, groups=rows, group_size=_group_size(cols))
        return out
