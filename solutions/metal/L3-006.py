"""Causal multi-head self-attention (GPT block): three kernels, no copies, no score matrix.

1. The fused QKV projection: a GEMM on the SIMD-group matrix units with the bias in its epilogue.
2. Flash attention that reads each head's q, k and v straight out of the projection's (B * S, 3 * D)
   output and writes (B * S, D) with the heads side by side, which is exactly the layout the output
   projection reads: the reference's split / view / transpose / reshape become index arithmetic.
   Causal blocks beyond a row's position are skipped entirely.
3. The output projection, the same GEMM with the bias in its epilogue.
"""

import math

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

constexpr constant uint BM = 32;        // rows (samples) of a threadgroup's output tile
constexpr constant uint BN = 32;        // columns (features) of the tile
constexpr constant uint BK = 16;        // depth of one step through K
constexpr constant uint THREADS = 128;  // four SIMD-groups, each owning a 16 x 16 quarter

// c[BM * BN] (threadgroup) = x[m0 : m0 + BM, :] * w[n0 : n0 + BN, :]^T on the SIMD-group matrix
// units. Both operands are K-contiguous (nn.Linear keeps its weight as (out, in)), so both stage
// with coalesced loads and w's fragments are loaded transposed. Rows, columns and depth past the
// matrices stage as zero: the fragment math never branches and any M, N, K works.
inline void linear_tile(device const float* x, device const float* w, uint M, uint N, uint K,
                        uint m0, uint n0, threadgroup float* xs, threadgroup float* ws,
                        threadgroup float* c, uint tid, uint simd) {
    const uint sm = (simd / 2) * 16, sn = (simd % 2) * 16;
    simdgroup_float8x8 acc[2][2];
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);

    for (uint k0 = 0; k0 < K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += THREADS) {
            uint r = e / BK, k = k0 + e % BK;
            xs[e] = (m0 + r < M && k < K) ? x[ulong(m0 + r) * K + k] : 0.0f;
            ws[e] = (n0 + r < N && k < K) ? w[ulong(n0 + r) * K + k] : 0.0f;   // BN == BM
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < BK; kk += 8) {
            simdgroup_float8x8 a[2], b[2];
            for (uint i = 0; i < 2; ++i) simdgroup_load(a[i], xs + (sm + 8 * i) * BK + kk, BK);
            for (uint j = 0; j < 2; ++j) simdgroup_load(b[j], ws + (sn + 8 * j) * BK + kk, BK, ulong2(0, 0), true);
            for (uint i = 0; i < 2; ++i)
                for (uint j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) simdgroup_store(acc[i][j], c + (sm + 8 * i) * BN + sn + 8 * j, BN);
    threadgroup_barrier(mem_flags::mem_threadgroup);
}

kernel void linear_bias(device const float* x [[buffer(0)]],
                        device const float* w [[buffer(1)]],
                        device const float* bias [[buffer(2)]],
                        device float* y [[buffer(3)]],
                        constant uint& M [[buffer(4)]],
                        constant uint& K [[buffer(5)]],
                        constant uint& N [[buffer(6)]],
                        uint2 group [[threadgroup_position_in_grid]],
                        uint tid [[thread_index_in_threadgroup]],
                        uint simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup float xs[BM * BK], ws[BN * BK], c[BM * BN];
    const uint m0 = group.y * BM, n0 = group.x * BN;
    linear_tile(x, w, M, N, K, m0, n0, xs, ws, c, tid, simd);
    for (uint e = tid; e < BM * BN; e += THREADS) {
        uint m = m0 + e / BN, n = n0 + e % BN;
        if (m < M && n < N) y[ulong(m) * N + n] = c[e] + bias[n];
    }
}

constexpr constant uint QROWS = 8;     // query rows per threadgroup: one per SIMD-group
constexpr constant uint BKV = 32;      // keys per block: one per lane when scoring
constexpr constant uint ATT_THREADS = 32 * QROWS;
constexpr constant uint DMAX = 128;    // largest head dimension: 4 output registers per lane

// Flash attention straight out of the fused QKV projection's output, (B * S, 3 * D) with the
// heads side by side in each third, into (B * S, D): the head split and merge are only index
// arithmetic, never a transpose copy. One query row per SIMD-group; blocks of 32 keys and values
// are staged in threadgroup memory and shared by the 8 rows; lane j scores key j, the block's
// max and sum come from simd_max / simd_sum, and the output (lane l holds dimensions l, l + 32,
// ...) is rescaled once per block (online softmax).
kernel void attention_qkv(device const float* qkv [[buffer(0)]],
                          device float* out [[buffer(1)]],
                          constant uint& S [[buffer(2)]],
                          constant uint& heads [[buffer(3)]],
                          constant uint& hd [[buffer(4)]],
                          constant float& scale [[buffer(5)]],
                          constant uint& causal [[buffer(6)]],
                          threadgroup float* smem [[threadgroup(0)]],   // (QROWS + 2 * BKV) * hd floats
                          uint2 group [[threadgroup_position_in_grid]], // x: query block, y: batch * head
                          uint tid [[thread_index_in_threadgroup]],
                          uint simd [[simdgroup_index_in_threadgroup]],
                          uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float* qs = smem;               // [QROWS][hd]
    threadgroup float* ks = qs + QROWS * hd;    // [BKV][hd]
    threadgroup float* vs = ks + BKV * hd;      // [BKV][hd]
    const uint D = heads * hd, b = group.y / heads, h = group.y % heads;
    const ulong stride = 3 * D;                 // between consecutive positions in qkv
    device const float* qh = qkv + ulong(b) * S * stride + h * hd;
    device const float* kh = qh + D;
    device const float* vh = qh + 2 * D;
    device float* oh = out + ulong(b) * S * D + h * hd;
    const uint q0 = group.x * QROWS;
    const uint i = q0 + simd;                   // this SIMD-group's query row
    const bool active = i < S;

    for (uint e = tid; e < QROWS * hd; e += ATT_THREADS) {
        uint row = q0 + e / hd;
        qs[e] = row < S ? qh[row * stride + e % hd] * scale : 0.0f;
    }

    float o[DMAX / 32] = {};
    float m = -INFINITY, l = 0.0f;
    const uint kv_end = causal ? min(S, q0 + QROWS) : S;   // causal rows of this block see no further
    for (uint j0 = 0; j0 < kv_end; j0 += BKV) {
        threadgroup_barrier(mem_flags::mem_threadgroup);   // the previous block is consumed
        for (uint e = tid; e < BKV * hd; e += ATT_THREADS) {
            uint j = j0 + e / hd;
            ks[e] = j < S ? kh[j * stride + e % hd] : 0.0f;
            vs[e] = j < S ? vh[j * stride + e % hd] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        if (!active || (causal && j0 > i)) continue;       // uniform across the SIMD-group

        uint j = j0 + lane;
        float s = -INFINITY;
        if (j < S && (!causal || j <= i)) {
            s = 0.0f;
            for (uint d = 0; d < hd; ++d) s = fma(qs[simd * hd + d], ks[lane * hd + d], s);
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
                if (d < hd) o[t] = fma(pj, vs[jj * hd + d], o[t]);
            }
        }
    }

    if (!active) return;
    float inv = 1.0f / l;
    for (uint t = 0; t < DMAX / 32; ++t) {
        uint d = lane + 32 * t;
        if (d < hd) oh[ulong(i) * D + d] = o[t] * inv;
    }
}
"""

_lib = metalrt.compile(SOURCE)
_TILE, _THREADS = 32, 128
_QROWS, _BKV, _DMAX = 8, 32, 128


def _linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    M, K = x.shape
    N = layer.out_features
    y = torch.empty(M, N, dtype=x.dtype, device=x.device)
    groups = ((N + _TILE - 1) // _TILE, (M + _TILE - 1) // _TILE)
    _lib.linear_bias(x, layer.weight, layer.bias, y, M, K, N, groups=groups, group_size=_THREADS)
    return y


class ModelNew(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"causal_self_attention: float32 inputs are supported, got {x.dtype}")
        b, s, d = x.shape
        hd = d // self.heads
        if hd > _DMAX:
            raise ValueError(f"causal_self_attention: head dimension {hd} is above this kernel's maximum of {_DMAX}")
        if b * s == 0:
            return torch.empty_like(x)
        qkv = _linear(x.contiguous().view(b * s, d), self.qkv)
        attn = torch.empty(b * s, d, dtype=x.dtype, device=x.device)
        _lib.attention_qkv(
            qkv,
            attn,
            s,
            self.heads,
            hd,
            1.0 / math.sqrt(hd),
            1,
            groups=((s + _QROWS - 1) // _QROWS, b * self.heads),
            group_size=32 * _QROWS,
            threadgroup_memory={0: (_QROWS + 2 * _BKV) * hd * 4},
        )
        return _linear(attn, self.proj).view(b, s, d)
