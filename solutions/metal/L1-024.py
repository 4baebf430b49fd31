"""Softmax over the last dimension, one threadgroup per row, the row read twice.

Pass 1 keeps an online (max, sum of exp(x - max)) pair per thread, so the maximum and the normaliser
come from a single read of the row; the pairs are merged with simd_max / simd_sum inside each
SIMD-group and then, through a 32-entry threadgroup array, across SIMD-groups (one barrier). Pass 2
reads the row again (from cache) and writes exp(x - max) / sum. Rows whose length is a multiple of
four move as float4 (half4); others take the scalar loop. Everything is computed in float.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

// Adds x to a running (max m, sum s of exp(v - m)) pair.
inline void online_add(thread float& m, thread float& s, float x) {
    if (x > m) {
        s = s * exp(m - x) + 1.0f;
        m = x;
    } else {
        s += exp(x - m);
    }
}

// The (max, sum) of the whole threadgroup, in every thread. `scratch` holds 2 * 32 floats.
inline float2 group_max_sum(float m, float s, threadgroup float* scratch,
                            uint lane, uint simd, uint simds) {
    float simd_m = simd_max(m);
    float simd_s = simd_sum(s == 0.0f ? 0.0f : s * exp(m - simd_m));
    if (lane == 0) {
        scratch[simd] = simd_m;
        scratch[32 + simd] = simd_s;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    m = lane < simds ? scratch[lane] : -INFINITY;
    s = lane < simds ? scratch[32 + lane] : 0.0f;
    float row_m = simd_max(m);
    float row_s = simd_sum(s == 0.0f ? 0.0f : s * exp(m - row_m));
    return float2(row_m, row_s);
}

template <typename T>
kernel void softmax_rows(device const T* x [[buffer(0)]],
                         device T* y [[buffer(1)]],
                         constant uint& cols [[buffer(2)]],
                         uint row [[threadgroup_position_in_grid]],
                         uint tid [[thread_position_in_threadgroup]],
                         uint threads [[threads_per_threadgroup]],
                         uint lane [[thread_index_in_simdgroup]],
                         uint simd [[simdgroup_index_in_threadgroup]],
                         uint simds [[simdgroups_per_threadgroup]]) {
    threadgroup float scratch[64];
    device const T* in = x + ulong(row) * cols;
    device T* out = y + ulong(row) * cols;
    // float4 loads need 16-byte aligned rows; other lengths go element by element.
    uint vecs = (cols % 4 == 0) ? cols / 4 : 0;
    device const vec<T, 4>* in4 = (device const vec<T, 4>*)in;
    device vec<T, 4>* out4 = (device vec<T, 4>*)out;

    float m = -INFINITY, s = 0.0f;
    for (uint j = tid; j < vecs; j += threads) {
        float4 v = float4(in4[j]);
        online_add(m, s, v.x);
        online_add(m, s, v.y);
        online_add(m, s, v.z);
        online_add(m, s, v.w);
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) online_add(m, s, float(in[j]));

    float2 ms = group_max_sum(m, s, scratch, lane, simd, simds);
    float inv = 1.0f / ms.y;
    for (uint j = tid; j < vecs; j += threads) out4[j] = vec<T, 4>(exp(float4(in4[j]) - ms.x) * inv);
    for (uint j = 4 * vecs + tid; j < cols; j += threads) out[j] = T(exp(float(in[j]) - ms.x) * inv);
}

template [[host_name("softmax_f32")]] kernel void softmax_rows<float>(
    device const float*, device float*, constant uint&, uint, uint, uint, uint, uint, uint);
template [[host_name("softmax_f16")]] kernel void softmax_rows<half>(
    device const half*, device half*, constant uint&, uint, uint, uint, uint, uint, uint);
"""

_lib = metalrt.compile(SOURCE)
_KERNELS = {torch.float32: _lib.softmax_f32, torch.float16: _lib.softmax_f16}


def _group_size(cols: int) -> int:
    """One float4 per thread up to 256 threads: whole SIMD-groups, no idle ones on short rows."""
    return min(256, max(32, (cols // 4 + 31) // 32 * 32))


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _KERNELS.get(x.dtype)
        if kernel is None:
            raise TypeError(f"softmax: float32 and float16 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        y = torch.empty_like(x)
        cols = x.shape[-1]
        rows = x.numel() // cols if cols else 0
        if rows:
            kernel(x, y, cols, groups=rows, group_size=_group_size(cols))
        return y
