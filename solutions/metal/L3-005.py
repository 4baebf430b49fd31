"""Pre-norm transformer encoder block: five kernels, each norm and elementwise op fused away.

1. LayerNorm 1 + QKV projection: the GEMM computes its rows' LayerNorm statistics in a prologue
   (two-pass, simd_sum) and normalises the activations as it stages them into threadgroup memory, so
   the normalised tensor never exists in DRAM; the bias is added in the epilogue.
2. Flash attention reading each head's q, k, v straight out of the (B * S, 3 * D) projection and
   writing (B * S, D), the layout the next GEMM reads: no transposes, no S x S scores.
3. Output projection with bias and the residual add in the epilogue.
4. LayerNorm 2 + fc1 with the same normalising prologue, bias and exact GELU in the epilogue.
5. fc2 with bias and the second residual add in the epilogue.

Every GEMM runs on the SIMD-group matrix units (32 x 32 tiles, four SIMD-groups, K staged 16 at a
time through threadgroup memory).
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

// LayerNorm statistics of the rows x[m0 : m0 + BM, :], for the GEMM below that normalises its A
// operand as it stages it: each SIMD-group takes 8 rows, two-pass mean and variance with simd_sum.
inline void row_stats(device const float* x, uint M, uint K, uint m0, float eps,
                      threadgroup float* mean, threadgroup float* rstd, uint simd, uint lane) {
    for (uint rr = 0; rr < 8; ++rr) {
        uint r = simd * 8 + rr, m = m0 + r;
        if (m >= M) break;   // uniform across the SIMD-group
        device const float* row = x + ulong(m) * K;
        float s = 0.0f;
        for (uint k = lane; k < K; k += 32) s += row[k];
        float mu = simd_sum(s) / K;
        float q = 0.0f;
        for (uint k = lane; k < K; k += 32) {
            float d = row[k] - mu;
            q += d * d;
        }
        float rs = rsqrt(simd_sum(q) / K + eps);
        if (lane == 0) {
            mean[r] = mu;
            rstd[r] = rs;
        }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
}

// linear_tile with LayerNorm(x) (statistics from row_stats, affine gamma and beta) as the A
// operand: the normalised activations exist only in threadgroup memory.
inline void ln_linear_tile(device const float* x, device const float* gamma, device const float* beta,
                           threadgroup const float* mean, threadgroup const float* rstd,
                           device const float* w, uint M, uint N, uint K, uint m0, uint n0,
                           threadgroup float* xs, threadgroup float* ws, threadgroup float* c,
                           uint tid, uint simd) {
    const uint sm = (simd / 2) * 16, sn = (simd % 2) * 16;
    simdgroup_float8x8 acc[2][2];
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);

    for (uint k0 = 0; k0 < K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += THREADS) {
            uint r = e / BK, k = k0 + e % BK;
            xs[e] = (m0 + r < M && k < K)
                        ? (x[ulong(m0 + r) * K + k] - mean[r]) * rstd[r] * gamma[k] + beta[k] : 0.0f;
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

// erfc(z) for z >= 0, relative error about 1.2e-7 (Numerical Recipes' erfcc coefficients).
inline float erfc_nonneg(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = -0.82215223f + t * 0.17087277f;
    p = 1.48851587f + t * p;
    p = -1.13520398f + t * p;
    p = 0.27886807f + t * p;
    p = -0.18628806f + t * p;
    p = 0.09678418f + t * p;
    p = 0.37409196f + t * p;
    p = 1.00002368f + t * p;
    return t * exp(-z * z - 1.26551223f + t * p);
}

// Exact GELU, written through erfc so that both tails keep their relative accuracy.
inline float gelu(float v) {
    float tail = erfc_nonneg(abs(v) * M_SQRT1_2_F);
    return v * (v < 0.0f ? 0.5f * tail : 1.0f - 0.5f * tail);
}

// y = act(LayerNorm(x) @ w^T + bias), act = GELU when `use_gelu`, else the identity.
kernel void ln_linear(device const float* x [[buffer(0)]],
                      device const float* gamma [[buffer(1)]],
                      device const float* beta [[buffer(2)]],
                      device const float* w [[buffer(3)]],
                      device const float* bias [[buffer(4)]],
                      device float* y [[buffer(5)]],
                      constant uint& M [[buffer(6)]],
                      constant uint& K [[buffer(7)]],
                      constant uint& N [[buffer(8)]],
                      constant float& eps [[buffer(9)]],
                      constant uint& use_gelu [[buffer(10)]],
                      uint2 group [[threadgroup_position_in_grid]],
                      uint tid [[thread_index_in_threadgroup]],
                      uint simd [[simdgroup_index_in_threadgroup]],
                      uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float xs[BM * BK], ws[BN * BK], c[BM * BN], mean[BM], rstd[BM];
    const uint m0 = group.y * BM, n0 = group.x * BN;
    row_stats(x, M, K, m0, eps, mean, rstd, simd, lane);
    ln_linear_tile(x, gamma, beta, mean, rstd, w, M, N, K, m0, n0, xs, ws, c, tid, simd);
    for (uint e = tid; e < BM * BN; e += THREADS) {
        uint m = m0 + e / BN, n = n0 + e % BN;
        if (m < M && n < N) {
            float v = c[e] + bias[n];
            y[ulong(m) * N + n] = use_gelu ? gelu(v) : v;
        }
    }
}

// y = residual + x @ w^T + bias
kernel void linear_residual(device const float* x [[buffer(0)]],
                            device const float* w [[buffer(1)]],
                            device const float* bias [[buffer(2)]],
                            device const float* residual [[buffer(3)]],
                            device float* y [[buffer(4)]],
                            constant uint& M [[buffer(5)]],
                            constant uint& K [[buffer(6)]],
                            constant uint& N [[buffer(7)]],
                            uint2 group [[threadgroup_position_in_grid]],
                            uint tid [[thread_index_in_threadgroup]],
                            uint simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup float xs[BM * BK], ws[BN * BK], c[BM * BN];
    const uint m0 = group.y * BM, n0 = group.x * BN;
    linear_tile(x, w, M, N, K, m0, n0, xs, ws, c, tid, simd);
    for (uint e = tid; e < BM * BN; e += THREADS) {
        uint m = m0 + e / BN, n = n0 + e % BN;
        if (m < M && n < N) {
            ulong at = ulong(m) * N + n;
            y[at] = residual[at] + c[e] + bias[n];
        }
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


def _grid(rows: int, cols: int) -> tuple[int, int]:
    return ((cols + _TILE - 1) // _TILE, (rows + _TILE - 1) // _TILE)


def _ln_linear(x: torch.Tensor, norm: nn.LayerNorm, layer: nn.Linear, gelu: bool) -> torch.Tensor:
    M, K = x.shape
    N = layer.out_features
    y = torch.empty(M, N, dtype=x.dtype, device=x.device)
    _lib.ln_linear(
        x,
        norm.weight,
        norm.bias,
        layer.weight,
        layer.bias,
        y,
        M,
        K,
        N,
        norm.eps,
        int(gelu),
        groups=_grid(M, N),
        group_size=_THREADS,
    )
    return y


def _linear_residual(x: torch.Tensor, layer: nn.Linear, residual: torch.Tensor) -> torch.Tensor:
    M, K = x.shape
    N = layer.out_features
    y = torch.empty(M, N, dtype=x.dtype, device=x.device)
    _lib.linear_residual(x, layer.weight, layer.bias, residual, y, M, K, N, groups=_grid(M, N), group_size=_THREADS)
    return y


class ModelNew(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"transformer_block: float32 inputs are supported, got {x.dtype}")
        b, s, d = x.shape
        hd = d // self.heads
        if hd > _DMAX:
            raise ValueError(f"transformer_block: head dimension {hd} is above this kernel's maximum of {_DMAX}")
        if b * s == 0:
            return torch.empty_like(x)
        rows = x.contiguous().view(b * s, d)
        qkv = _ln_linear(rows, self.norm1, self.qkv, gelu=False)
        attn = torch.empty(b * s, d, dtype=x.dtype, device=x.device)
        _lib.attention_qkv(
            qkv,
            attn,
            s,
            self.heads,
            hd,
            1.0 / math.sqrt(hd),
            0,
            groups=((s + _QROWS - 1) // _QROWS, b * self.heads),
            group_size=32 * _QROWS,
            threadgroup_memory={0: (_QROWS + 2 * _BKV) * hd * 4},
        )
        h = _linear_residual(attn, self.proj, rows)
        hidden = _ln_linear(h, self.norm2, self.fc1, gelu=True)
        return _linear_residual(hidden, self.fc2, h).view(b, s, d)
