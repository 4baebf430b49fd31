"""LayerNorm over the last dimension with a learned scale and shift.

CUDA through metalrt (NVRTC): one threadgroup (CUDA block) per row. The row is staged in dynamic shared memory (threadgroup_memory={0: bytes}; above 48 KiB the runtime opts the kernel in) so it is read from memory once; a row too long for shared memory is re-read instead. Mean and variance come from two passes (no cancellation). Templated on the
storage type (float or half); the arithmetic is float.
"""

import metalrt
import torch
import torch.nn as nn

SOURCE = r"""
#include <cuda_fp16.h>
#include <math.h>

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
// Every thread gets the block's total. `scratch` holds one value per warp; the first barrier
// keeps a previous call's readers from seeing this call's writes.
__device__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? scratch[lane] : 0.0f);
}
__device__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_max(lane < warps ? scratch[lane] : -INFINITY);
}

template <typename T>
__global__ void layer_norm(const T* __restrict__ x, const T* __restrict__ weight, const T* __restrict__ bias, T* __restrict__ y,
                         int cols, float eps, int cached) {
  extern __shared__ float row[];  // the row as float, when cached
  __shared__ float scratch[32];
  const T* xr = x + (long long)blockIdx.x * cols;
  T* yr = y + (long long)blockIdx.x * cols;
  float s = 0.0f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = to_float(xr[c]);
    if (cached) row[c] = v;
    s += v;
  }
  const float mean = block_sum(s, scratch) / cols;
  float q = 0.0f;  // two passes: the variance of the centred values, no cancellation
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = (cached ? row[c] : to_float(xr[c])) - mean;
    q += d * d;
  }
  const float rstd = rsqrtf(block_sum(q, scratch) / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = cached ? row[c] : to_float(xr[c]);
    yr[c] = from_float<T>((v - mean) * rstd * to_float(weight[c]) + to_float(bias[c]));
  }
}
"""

_lib = metalrt.compile(SOURCE, backend="cuda", name_expressions=["layer_norm<float>", "layer_norm<__half>"])
_KERNELS = {torch.float32: _lib["layer_norm<float>"], torch.float16: _lib["layer_norm<__half>"]}
_GROUP = 256


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(dim))
        self.bias = nn.Parameter(0.1 * torch.randn(dim))
        self._shared_limit = metalrt.device("cuda").max_threadgroup_memory - 1024  # the kernel's own scratch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _KERNELS.get(x.dtype)
        if kernel is None:
            raise TypeError(f"layer_norm: float32 and float16 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        y = torch.empty_like(x)
        cols = x.shape[-1]
        if self.weight.shape[0] != cols:
            raise ValueError(f"layer_norm: the last dimension is {cols}, the weight has {self.weight.shape[0]}")
        rows = x.numel() // cols if cols else 0
        if rows == 0:
            return y
        cached = cols * 4 <= self._shared_limit
        kernel(x, self.weight.detach(), self.bias.detach(), y, cols, float(self.eps), int(cached), groups=rows, group_size=_GROUP,
               threadgroup_memory={0: cols * 4 if cached else 0})
        return y
