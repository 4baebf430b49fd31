"""Embedding lookup, out[t] = table[tokens[t]]: a gather, one SIMD-group per token, float4 copies.

Pure data movement: each token's row is copied by the 32 lanes of one SIMD-group in 16-byte float4
(8-byte half4) steps, 512 contiguous bytes per step, so reads and writes both coalesce. The token id
is read once per SIMD-group (every lane reads the same address: one broadcast). Rows whose width is
not a multiple of four (unaligned for float4) take the scalar loop.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

template <typename T>
kernel void embedding_gather(device const long* tokens [[buffer(0)]],
                             device const T* table [[buffer(1)]],
                             device T* out [[buffer(2)]],
                             constant uint& count [[buffer(3)]],
                             constant uint& dim [[buffer(4)]],
                             uint group [[threadgroup_position_in_grid]],
                             uint simd [[simdgroup_index_in_threadgroup]],
                             uint simds [[simdgroups_per_threadgroup]],
                             uint lane [[thread_index_in_simdgroup]]) {
    uint t = group * simds + simd;
    if (t >= count) return;
    device const T* src = table + ulong(tokens[t]) * dim;
    device T* dst = out + ulong(t) * dim;
    uint vecs = (dim % 4 == 0) ? dim / 4 : 0;
    for (uint j = lane; j < vecs; j += 32) ((device vec<T, 4>*)dst)[j] = ((device const vec<T, 4>*)src)[j];
    for (uint j = 4 * vecs + lane; j < dim; j += 32) dst[j] = src[j];
}

template [[host_name("embedding_f32")]] kernel void embedding_gather<float>(
    device const long*, device const float*, device float*, constant uint&, constant uint&, uint, uint, uint, uint);
template [[host_name("embedding_f16")]] kernel void embedding_gather<half>(
    device const long*, device const half*, device half*, constant uint&, constant uint&, uint, uint, uint, uint);
"""

_lib = metalrt.compile(SOURCE)
_KERNELS = {torch.float32: _lib.embedding_f32, torch.float16: _lib.embedding_f16}
_TOKENS_PER_GROUP = 8


class ModelNew(nn.Module):
    def __init__(self, vocab: int, dim: int):
        super().__init__()
        self.table = nn.Embedding(vocab, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        table = self.table.weight
        kernel = _KERNELS.get(table.dtype)
        if kernel is None or tokens.dtype != torch.int64:
            raise TypeError(
                "embedding: int64 tokens and a float32 or float16 table are supported, "
                f"got {tokens.dtype} and {table.dtype}"
            )
        tokens = tokens.contiguous()
        dim = table.shape[1]
        out = torch.empty(*tokens.shape, dim, dtype=table.dtype, device=table.device)
        count = tokens.numel()
        if count and dim:
            groups = (count + _TOKENS_PER_GROUP - 1) // _TOKENS_PER_GROUP
            kernel(tokens, table, out, count, dim, groups=groups, group_size=32 * _TOKENS_PER_GROUP)
        return out
