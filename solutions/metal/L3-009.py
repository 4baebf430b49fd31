"""Gated MLP (SwiGLU), down(silu(gate(x)) * up(x)): two kernels instead of five ops.

Kernel 1 computes the gate and up projections of a 32 x 32 tile together on the SIMD-group matrix
units: one staged tile of x feeds two sets of accumulators, so x is read once for both, and the
epilogue writes silu(g) * u directly. The two (tokens x hidden) projections never reach DRAM; only
their product does, once. Kernel 2 is the down projection, the same tiled GEMM. Neither linear has a
bias.
"""

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

// The gate and up projections of the same rows in one pass over K: the x tile is staged once
// and feeds two sets of accumulators. g and u receive the BM x BN tiles of x * wg^T and x * wu^T.
inline void dual_linear_tile(device const float* x, device const float* wg, device const float* wu,
                             uint M, uint N, uint K, uint m0, uint n0, threadgroup float* xs,
                             threadgroup float* gs, threadgroup float* us, threadgroup float* g,
                             threadgroup float* u, uint tid, uint simd) {
    const uint sm = (simd / 2) * 16, sn = (simd % 2) * 16;
    simdgroup_float8x8 acc_g[2][2], acc_u[2][2];
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) {
            acc_g[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
            acc_u[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
        }

    for (uint k0 = 0; k0 < K; k0 += BK) {
        for (uint e = tid; e < BM * BK; e += THREADS) {
            uint r = e / BK, k = k0 + e % BK;
            bool in_k = k < K;
            xs[e] = (m0 + r < M && in_k) ? x[ulong(m0 + r) * K + k] : 0.0f;
            gs[e] = (n0 + r < N && in_k) ? wg[ulong(n0 + r) * K + k] : 0.0f;   // BN == BM
            us[e] = (n0 + r < N && in_k) ? wu[ulong(n0 + r) * K + k] : 0.0f;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < BK; kk += 8) {
            simdgroup_float8x8 a[2], b[2];
            for (uint i = 0; i < 2; ++i) simdgroup_load(a[i], xs + (sm + 8 * i) * BK + kk, BK);
            for (uint j = 0; j < 2; ++j) simdgroup_load(b[j], gs + (sn + 8 * j) * BK + kk, BK, ulong2(0, 0), true);
            for (uint i = 0; i < 2; ++i)
                for (uint j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc_g[i][j], a[i], b[j], acc_g[i][j]);
            for (uint j = 0; j < 2; ++j) simdgroup_load(b[j], us + (sn + 8 * j) * BK + kk, BK, ulong2(0, 0), true);
            for (uint i = 0; i < 2; ++i)
                for (uint j = 0; j < 2; ++j) simdgroup_multiply_accumulate(acc_u[i][j], a[i], b[j], acc_u[i][j]);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    for (uint i = 0; i < 2; ++i)
        for (uint j = 0; j < 2; ++j) {
            simdgroup_store(acc_g[i][j], g + (sm + 8 * i) * BN + sn + 8 * j, BN);
            simdgroup_store(acc_u[i][j], u + (sm + 8 * i) * BN + sn + 8 * j, BN);
        }
    threadgroup_barrier(mem_flags::mem_threadgroup);
}

kernel void swiglu_up(device const float* x [[buffer(0)]],
                      device const float* w_gate [[buffer(1)]],
                      device const float* w_up [[buffer(2)]],
                      device float* h [[buffer(3)]],
                      constant uint& M [[buffer(4)]],
                      constant uint& K [[buffer(5)]],
                      constant uint& N [[buffer(6)]],
                      uint2 group [[threadgroup_position_in_grid]],
                      uint tid [[thread_index_in_threadgroup]],
                      uint simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup float xs[BM * BK], gs[BN * BK], us[BN * BK], g[BM * BN], u[BM * BN];
    const uint m0 = group.y * BM, n0 = group.x * BN;
    dual_linear_tile(x, w_gate, w_up, M, N, K, m0, n0, xs, gs, us, g, u, tid, simd);
    for (uint e = tid; e < BM * BN; e += THREADS) {
        uint m = m0 + e / BN, n = n0 + e % BN;
        if (m < M && n < N) h[ulong(m) * N + n] = g[e] / (1.0f + exp(-g[e])) * u[e];
    }
}

kernel void linear_nobias(device const float* x [[buffer(0)]],
                          device const float* w [[buffer(1)]],
                          device float* y [[buffer(2)]],
                          constant uint& M [[buffer(3)]],
                          constant uint& K [[buffer(4)]],
                          constant uint& N [[buffer(5)]],
                          uint2 group [[threadgroup_position_in_grid]],
                          uint tid [[thread_index_in_threadgroup]],
                          uint simd [[simdgroup_index_in_threadgroup]]) {
    threadgroup float xs[BM * BK], ws[BN * BK], c[BM * BN];
    const uint m0 = group.y * BM, n0 = group.x * BN;
    linear_tile(x, w, M, N, K, m0, n0, xs, ws, c, tid, simd);
    for (uint e = tid; e < BM * BN; e += THREADS) {
        uint m = m0 + e / BN, n = n0 + e % BN;
        if (m < M && n < N) y[ulong(m) * N + n] = c[e];
    }
}
"""

_lib = metalrt.compile(SOURCE)
_TILE, _THREADS = 32, 128


def _grid(rows: int, cols: int) -> tuple[int, int]:
    return ((cols + _TILE - 1) // _TILE, (rows + _TILE - 1) // _TILE)


class ModelNew(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"gated_mlp: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        tokens, dim = x.shape
        hidden = self.gate.out_features
        h = torch.empty(tokens, hidden, dtype=x.dtype, device=x.device)
        y = torch.empty(tokens, dim, dtype=x.dtype, device=x.device)
        if tokens and hidden and dim:
            _lib.swiglu_up(
                x,
                self.gate.weight,
                self.up.weight,
                h,
                tokens,
                dim,
                hidden,
                groups=_grid(tokens, hidden),
                group_size=_THREADS,
            )
            _lib.linear_nobias(
                h, self.down.weight, y, tokens, hidden, dim, groups=_grid(tokens, dim), group_size=_THREADS
            )
        return y
