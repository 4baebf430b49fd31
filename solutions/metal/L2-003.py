"""Linear, LayerNorm over the features (learned affine), ReLU: one kernel.

A threadgroup owns 32 whole rows of the output. It walks across them one 32 x 32 tile at a time: the
GEMM of a tile runs on the SIMD-group matrix units (four SIMD-groups, K staged through threadgroup
memory 16 at a time), then each SIMD-group takes 8 of the tile's rows, one column per lane, adds the
bias, stores the pre-norm value and adds the tile's simd_sum into its row's running sum. After the
last tile the row statistics are final and each SIMD-group finishes its rows in place: its lanes
re-read exactly the elements they wrote themselves (still in cache), so no barrier or device-memory
fence is needed, and no second kernel either. The row statistics live in registers: simd_sum gives
every lane the same total. The variance is the two-pass kind (a pass for the mean, one for squared
deviations), which stays accurate when the mean is large next to the spread.
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

kernel void linear_layernorm_relu(device const float* x [[buffer(0)]],
                                  device const float* w [[buffer(1)]],
                                  device const float* bias [[buffer(2)]],
                                  device const float* gamma [[buffer(3)]],
                                  device const float* beta [[buffer(4)]],
                                  device float* y [[buffer(5)]],
                                  constant uint& M [[buffer(6)]],
                                  constant uint& K [[buffer(7)]],
                                  constant uint& N [[buffer(8)]],
                                  constant float& eps [[buffer(9)]],
                                  uint group [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint simd [[simdgroup_index_in_threadgroup]],
                                  uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float xs[BM * BK], ws[BN * BK], c[BM * BN];
    const uint m0 = group * BM;
    // Each SIMD-group owns 8 rows of the block. simd_sum and simd_max hand every lane the same
    // value, so every lane keeps the same copy of its rows' statistics, in registers.
    float row_sum[8] = {};

    for (uint n0 = 0; n0 < N; n0 += BN) {
        linear_tile(x, w, M, N, K, m0, n0, xs, ws, c, tid, simd);
        for (uint rr = 0; rr < 8; ++rr) {
            uint r = simd * 8 + rr, m = m0 + r, n = n0 + lane;
            if (m >= M) break;   // uniform across the SIMD-group
            bool valid = n < N;
            float v = valid ? c[r * BN + lane] + bias[n] : 0.0f;
            if (valid) y[ulong(m) * N + n] = v;
            row_sum[rr] += simd_sum(v);
        }
    }

    for (uint rr = 0; rr < 8; ++rr) {
        uint m = m0 + simd * 8 + rr;
        if (m >= M) break;
        device float* out = y + ulong(m) * N;
        float mean = row_sum[rr] / N;
        float q = 0.0f;
        for (uint n = lane; n < N; n += 32) {
            float d = out[n] - mean;
            q += d * d;
        }
        float rstd = rsqrt(simd_sum(q) / N + eps);
        for (uint n = lane; n < N; n += 32) out[n] = max((out[n] - mean) * rstd * gamma[n] + beta[n], 0.0f);
    }
}
"""

_lib = metalrt.compile(SOURCE)
_ROWS, _THREADS = 32, 128


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.2 * torch.randn(out_features))
            self.norm.bias.copy_(0.2 * torch.randn(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"linear_layernorm_relu: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        M, K = x.shape
        N = self.linear.out_features
        y = torch.empty(M, N, dtype=x.dtype, device=x.device)
        if M and N:
            _lib.linear_layernorm_relu(
                x,
                self.linear.weight,
                self.linear.bias,
                self.norm.weight,
                self.norm.bias,
                y,
                M,
                K,
                N,
                self.norm.eps,
                groups=(M + _ROWS - 1) // _ROWS,
                group_size=_THREADS,
            )
        return y
