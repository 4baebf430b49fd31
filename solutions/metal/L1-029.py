"""BatchNorm2d in eval mode: y = (x - running_mean) * rsqrt(running_var + eps) * weight + bias.

In eval mode the statistics are constants, so the op is a per-channel affine map x * scale + shift
and purely bandwidth-bound. A 2-D grid puts one (image, channel) plane on each row of threads, so a
thread's channel is its grid row: no division per element, and scale and shift are computed once per
thread from the four per-channel parameters. Each thread moves four elements, as one float4 (half4)
where the plane's size is a multiple of four, element by element otherwise.
"""

import torch
import torch.nn as nn

import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

template <typename T>
kernel void batch_norm_eval(device const T* x [[buffer(0)]],
                            device const T* mean [[buffer(1)]],
                            device const T* var [[buffer(2)]],
                            device const T* weight [[buffer(3)]],
                            device const T* bias [[buffer(4)]],
                            device T* y [[buffer(5)]],
                            constant uint& channels [[buffer(6)]],
                            constant uint& plane [[buffer(7)]],
                            constant float& eps [[buffer(8)]],
                            uint2 gid [[thread_position_in_grid]]) {
    uint c = gid.y % channels;
    float scale = float(weight[c]) * rsqrt(float(var[c]) + eps);
    float shift = float(bias[c]) - float(mean[c]) * scale;
    ulong base = ulong(gid.y) * plane + 4 * gid.x;
    uint left = plane - 4 * gid.x;   // elements of this plane from base on (> 0)
    if (plane % 4 == 0) {
        device const vec<T, 4>* in = (device const vec<T, 4>*)(x + base);
        *((device vec<T, 4>*)(y + base)) = vec<T, 4>(fma(float4(*in), scale, shift));
    } else {
        for (uint i = 0; i < min(left, 4u); ++i) y[base + i] = T(fma(float(x[base + i]), scale, shift));
    }
}

template [[host_name("batch_norm_f32")]] kernel void batch_norm_eval<float>(
    device const float*, device const float*, device const float*, device const float*,
    device const float*, device float*, constant uint&, constant uint&, constant float&, uint2);
template [[host_name("batch_norm_f16")]] kernel void batch_norm_eval<half>(
    device const half*, device const half*, device const half*, device const half*,
    device const half*, device half*, constant uint&, constant uint&, constant float&, uint2);
"""

_lib = metalrt.compile(SOURCE)
_KERNELS = {torch.float32: _lib.batch_norm_f32, torch.float16: _lib.batch_norm_f16}


class ModelNew(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        with torch.no_grad():
            self.bn.running_mean.copy_(0.5 * torch.randn(channels))
            self.bn.running_var.copy_(0.5 + torch.rand(channels))
            self.bn.weight.copy_(1.0 + 0.2 * torch.randn(channels))
            self.bn.bias.copy_(0.2 * torch.randn(channels))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = _KERNELS.get(x.dtype)
        if kernel is None:
            raise TypeError(f"batch_norm: float32 and float16 inputs are supported, got {x.dtype}")
        x = x.contiguous()
        y = torch.empty_like(x)
        channels = x.shape[1]
        plane = x[0, 0].numel()
        planes = x.numel() // plane if plane else 0
        if planes:
            bn = self.bn
            kernel(
                x,
                bn.running_mean,
                bn.running_var,
                bn.weight,
                bn.bias,
                y,
                channels,
                plane,
                bn.eps,
                threads=((plane + 3) // 4, planes),
                group_size=(64, 1),
            )
        return y
