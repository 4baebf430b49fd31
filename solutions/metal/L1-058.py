"""Cross-entropy per sample, logsumexp(logits) - logits[label]: one threadgroup per row, one read.

Each thread keeps an online (max, sum of exp(x - max)) pair, so the row of logits is read once; the
pairs are merged with simd_max / simd_sum inside each SIMD-group and then, through a 32-entry
threadgroup array, across SIMD-groups (one barrier). Thread 0 reads the label's logit and writes the
loss. Labels are int64 as PyTorch gives them; rows whose length is a multiple of four move as
float4.
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

kernel void cross_entropy_rows(device const float* logits [[buffer(0)]],
                               device const long* labels [[buffer(1)]],
                               device float* loss [[buffer(2)]],
                               constant uint& cols [[buffer(3)]],
                               uint row [[threadgroup_position_in_grid]],
                               uint tid [[thread_position_in_threadgroup]],
                               uint threads [[threads_per_threadgroup]],
                               uint lane [[thread_index_in_simdgroup]],
                               uint simd [[simdgroup_index_in_threadgroup]],
                               uint simds [[simdgroups_per_threadgroup]]) {
    threadgroup float scratch[64];
    device const float* in = logits + ulong(row) * cols;
    // float4 loads need 16-byte aligned rows; other lengths go element by element.
    uint vecs = (cols % 4 == 0) ? cols / 4 : 0;
    device const float4* in4 = (device const float4*)in;

    float m = -INFINITY, s = 0.0f;
    for (uint j = tid; j < vecs; j += threads) {
        float4 v = in4[j];
        online_add(m, s, v.x);
        online_add(m, s, v.y);
        online_add(m, s, v.z);
        online_add(m, s, v.w);
    }
    for (uint j = 4 * vecs + tid; j < cols; j += threads) online_add(m, s, in[j]);

    float2 ms = group_max_sum(m, s, scratch, lane, simd, simds);
    if (tid == 0) loss[row] = (ms.x + log(ms.y)) - in[labels[row]];
}
"""

_lib = metalrt.compile(SOURCE)


def _group_size(cols: int) -> int:
    """Up to four float4 per thread and 256 threads: whole SIMD-groups, none idle on short rows."""
    return min(256, max(32, (cols // 16 + 31) // 32 * 32))


class ModelNew(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.dtype != torch.float32 or labels.dtype != torch.int64:
            raise TypeError(
                f"cross_entropy: float32 logits and int64 labels are supported, got {logits.dtype} and {labels.dtype}"
            )
        logits, labels = logits.contiguous(), labels.contiguous()
        rows, cols = logits.shape
        loss = torch.empty(rows, dtype=logits.dtype, device=logits.device)
        if rows:
            _lib.cross_entropy_rows(logits, labels, loss, cols, groups=rows, group_size=_group_size(cols))
        return loss
