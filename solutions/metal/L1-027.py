"""LayerNorm over the last dimension with a learned affine: one threadgroup per row.

Two-pass statistics (the mean, then the mean of squared deviations), the textbook-stable formula:
E[x^2] - E[x]^2 loses digits when |mean| is large next to the spread. Each sum is a simd_sum inside
every SIMD-group and one more across the SIMD-groups' partials in threadgroup memory. The row is
read three times, but it is a few KiB that the later passes find in cache, so DRAM sees it once.
Rows whose length is a multiple of four move as float4 (half4), weight and bias too; others take the
scalar loop. Everything is computed in float.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

// The sum of v over the threadgroup, in every thread. `scratch` holds 32 floats; the closing
// barrier lets the next call reuse it.
inline float group_sum(float v, threadgroup float* scratch, uint lane, uint simd, uint simds) {
    float s = simd_sum(v);
    if (lane == 0) scratch[simd] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    s = simd_sum(lane < simds ? scratch[lane] : 0.0f);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    return s;
}

template <typename T>
kernel void layer_norm_rows(device const T* x [[buffer(0)]],
                            device const T* weight [[buffer(1)]],
                            device const T* bias [[buffer(2)]],
                            device T* y [[buffer(3)]],
                            constant uint& cols [[buffer(4)]],
                            constant float& eps [[buffer(5)]],
                            uint row [[threadgroup_position_in_grid]],
                            uint tid [[thread_position_in_threadgroup]],
                            uint threads [[threads_per_threadgroup]],
                            uint lane [[thread_index_in_simdgroup]],
                            uint simd [[simdgroup_index_in_threadgroup]],
                            uint simds [[simdgroups_per_threadgroup]]) {
    threadgroup float scratch[32];
    device const T* in = x + ulong(row) * cols;
    device T* out = y + ulong(row) * cols;
    // float4 loads need 16-byte aligned rows; other lengths go element by element.
    uint vecs = (cols % 4 == 0) ? cols / 4 : 0;
    device const vec<T, 4>* in4 = (device const vec<T, 4>*)in;

    float s = 0.0f;
    for (uint j = tid; j < vecs; j += threads) {
        float4 v = float4(in4[j]);
        s += (v.x + v.y) + (v.z + v.w);
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) s += float(in[j]);
    float mean = group_sum(s, scratch, lane, simd, simds) / cols;

    float q = 0.0f;
    for (uint j = tid; j < vecs; j += threads) {
        float4 d = float4(in4[j]) - mean;
        q += dot(d, d);
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) {
        float d = float(in[j]) - mean;
        q += d * d;
    }
    float rstd = rsqrt(group_sum(q, scratch, lane, simd, simds) / cols + eps);

    device const vec<T, 4>* w4 = (device const vec<T, 4>*)weight;
    device const vec<T, 4>* b4 = (device const vec<T, 4>*)bias;
    device vec<T, 4>* out4 = (device vec<T, 4>*)out;
    for (uint j = tid; j < vecs; j += threads) {
        float4 v = (float4(in4[j]) - mean) * rstd;
        out4[j] = vec<T, 4>(v * float4(w4[j]) + float4(b4[j]));
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) {
        out[j] = T((float(in[j]) - mean) * rstd * float(weight[j]) + float(bias[j]));
    }
}

template [[host_name("layer_norm_f32")]] kernel void layer_norm_rows<float>(
    device const float*, device const float*, device const float*, device float*, constant uint&,
    constant float&, uint, uint, uint, uint, uint, uint);
template [[host_name("layer_norm_f16")]] kernel void layer_norm_rows<half>(
    device const half*, device const half*, device const half*, device half*, constant uint&,
    constant float&, uint, uint, uint, uint, uint, uint);
"""

_lib = metalrt.compile(SOURCE)
_KERNELS = {torch.float32: _lib.layer_norm_f32, torch.float16: _lib.layer_norm_f16}


def _group_size(cols: int) -> int:
    """Up to four float4 per thread and 256 threads: whole SIMD-groups, none idle on short rows."""
    return min(256, max(32, (cols // 16 + 31) // 32 * 32))


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.bias = nn.Parameter(0.1 * torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _KERNELS.get(x.dtype)
        if kernel is None:
            raise TypeError(f"layer_norm: float32 and float16 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        y = torch.empty_like(x)
        cols = x.shape[-1]
        rows = x.numel() // cols if cols else 0
        if rows:
            kernel(x, self.weight, self.bias, y, cols, self.eps, groups=rows, group_size=_group_size(cols))
        return y
