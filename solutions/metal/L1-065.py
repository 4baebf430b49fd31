"""Causal scaled dot-product attention as one flash-attention kernel that skips the masked half.

One SIMD-group per query row, eight rows per threadgroup. Keys and values stream through threadgroup
memory 32 at a time and are shared by the eight rows; a threadgroup stops at its last row's
position, and a row skips whole blocks beyond its own, so the masked upper triangle costs neither
loads nor arithmetic. Each lane scores one key (masked ones score -inf), the block's max and
normaliser come from simd_max and simd_sum, and the row's output (spread over the lanes) is rescaled
once per block by the online-softmax rule; the score matrix is never materialised.
"""

import math

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constexpr constant uint QROWS = 8;     // query rows per threadgroup: one per SIMD-group
constexpr constant uint BKV = 32;      // keys per block: one per lane when scoring
constexpr constant uint THREADS = 32 * QROWS;
constexpr constant uint DMAX = 128;    // largest head dimension: 4 output registers per lane

// Flash attention, one query row per SIMD-group. Blocks of 32 keys and values are staged in
// threadgroup memory and shared by the 8 rows of the threadgroup. Lane j scores key j of the
// block against the row's (pre-scaled) query, the block's max and sum come from simd_max and
// simd_sum, and the running output (lane l holds dimensions l, l + 32, ...) is rescaled once per
// block (online softmax), so the S x S score matrix never exists anywhere.
kernel void attention(device const float* q [[buffer(0)]],
                      device const float* k [[buffer(1)]],
                      device const float* v [[buffer(2)]],
                      device float* out [[buffer(3)]],
                      constant uint& S [[buffer(4)]],
                      constant uint& D [[buffer(5)]],
                      constant float& scale [[buffer(6)]],
                      constant uint& causal [[buffer(7)]],
                      threadgroup float* smem [[threadgroup(0)]],   // (QROWS + 2 * BKV) * D floats
                      uint2 group [[threadgroup_position_in_grid]], // x: query block, y: batch * head
                      uint tid [[thread_index_in_threadgroup]],
                      uint simd [[simdgroup_index_in_threadgroup]],
                      uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float* qs = smem;               // [QROWS][D]
    threadgroup float* ks = qs + QROWS * D;     // [BKV][D]
    threadgroup float* vs = ks + BKV * D;       // [BKV][D]
    const ulong head = ulong(group.y) * S * D;
    const uint q0 = group.x * QROWS;
    const uint i = q0 + simd;                   // this SIMD-group's query row
    const bool active = i < S;

    for (uint e = tid; e < QROWS * D; e += THREADS) {
        uint row = q0 + e / D;
        qs[e] = row < S ? q[head + ulong(row) * D + e % D] * scale : 0.0f;
    }

    float o[DMAX / 32] = {};
    float m = -INFINITY, l = 0.0f;
    const uint kv_end = causal ? min(S, q0 + QROWS) : S;   // causal rows of this block see no further
    for (uint j0 = 0; j0 < kv_end; j0 += BKV) {
        threadgroup_barrier(mem_flags::mem_threadgroup);   // the previous block is consumed
        for (uint e = tid; e < BKV * D; e += THREADS) {
            uint j = j0 + e / D;
            ks[e] = j < S ? k[head + ulong(j) * D + e % D] : 0.0f;
            vs[e] = j < S ? v[head + ulong(j) * D + e % D] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (!active || (causal && j0 > i)) continue;       // uniform across the SIMD-group

        uint j = j0 + lane;
        float s = -INFINITY;
        if (j < S && (!causal || j <= i)) {
            s = 0.0f;
            for (uint d = 0; d < D; ++d) s = fma(qs[simd * D + d], ks[lane * D + d], s);
        }
        float m_new = max(m, simd_max(s));   // finite: key j0 <= i is always in the block
        float p = exp(s - m_new);
        float alpha = exp(m - m_new);
        l = l * alpha + simd_sum(p);
        m = m_new;
        for (uint t = 0; t < DMAX / 32; ++t) o[t] *= alpha;
        for (uint jj = 0; jj < BKV; ++jj) {
            float pj = simd_shuffle(p, jj);
            for (uint t = 0; t < DMAX / 32; ++t) {
                uint d = lane + 32 * t;
                if (d < D) o[t] = fma(pj, vs[jj * D + d], o[t]);
            }
        }
    }

    if (!active) return;
    float inv = 1.0f / l;
    for (uint t = 0; t < DMAX / 32; ++t) {
        uint d = lane + 32 * t;
        if (d < D) out[head + ulong(i) * D + d] = o[t] * inv;
    }
}
"""

_lib = metalrt.compile(SOURCE)
_QROWS, _BKV, _DMAX = 8, 32, 128


class ModelNew(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if not (q.dtype == k.dtype == v.dtype == torch.float32):
            raise TypeError(f"attention: float32 inputs are supported, got {q.dtype}, {k.dtype}, {v.dtype}")
        if not (q.shape == k.shape == v.shape):
            raise ValueError(
                f"attention: q, k and v must have one shape, got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
            )
        seq, dim = q.shape[-2:]
        if dim > _DMAX:
            raise ValueError(f"attention: head dimension {dim} is above this kernel's maximum of {_DMAX}")
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty_like(q)
        heads = q.numel() // (seq * dim) if seq and dim else 0
        if heads:
            _lib.attention(
                q,
                k,
                v,
                out,
                seq,
                dim,
                1.0 / math.sqrt(dim),
                1,
                groups=((seq + _QROWS - 1) // _QROWS, heads),
                group_size=32 * _QROWS,
                threadgroup_memory={0: (_QROWS + 2 * _BKV) * dim * 4},
            )
        return out
