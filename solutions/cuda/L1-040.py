"""Inclusive prefix sum along the last dimension.

CUDA through metalrt (NVRTC): one threadgroup (CUDA block) of 1024 threads per row. Each thread
owns a contiguous run of the row: it sums the run, the block scans the runs' totals (warp
shuffles, then one warp over the warps' totals), and each thread writes its run again starting
from the total of everything before it.
"""

import metalrt
import torch
import torch.nn as nn

SOURCE = r"""
__device__ __forceinline__ float warp_inclusive_scan(float v, int lane) {
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float up = __shfl_up_sync(0xffffffffu, v, offset);
    if (lane >= offset) v += up;
  }
  return v;
}

extern "C" __global__ void cumsum_rows(const float* __restrict__ x, float* __restrict__ y, int cols) {
  __shared__ float warp_totals[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int per_thread = (cols + blockDim.x - 1) / blockDim.x;
  const int begin = min((int)threadIdx.x * per_thread, cols);
  const int end = min(begin + per_thread, cols);
  const float* xr = x + (long long)blockIdx.x * cols;
  float* yr = y + (long long)blockIdx.x * cols;

  float run = 0.0f;
  for (int c = begin; c < end; ++c) run += xr[c];

  const float inclusive = warp_inclusive_scan(run, lane);
  if (lane == 31) warp_totals[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const float total = warp_inclusive_scan(lane < warps ? warp_totals[lane] : 0.0f, lane);
    warp_totals[lane] = total;
  }
  __syncthreads();

  float acc = inclusive - run + (warp > 0 ? warp_totals[warp - 1] : 0.0f);  // everything before this run
  for (int c = begin; c < end; ++c) {
    acc += xr[c];
    yr[c] = acc;
  }
}
"""

_lib = metalrt.compile(SOURCE, backend="cuda")
_GROUP = 1024


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            raise TypeError(f"cumsum_rows: float32 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        y = torch.empty_like(x)
        cols = x.shape[-1] if x.dim() else 1
        rows = x.numel() // cols if cols else 0
        if rows == 0:
            return y
        _lib.cumsum_rows(x, y, cols, groups=rows, group_size=_GROUP)
        return y
