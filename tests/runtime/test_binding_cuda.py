"""Binding real CUDA tensors (needs an NVIDIA GPU): device, device index and storage offset come
from the tensor's own attributes, without linking libtorch."""

import pytest
import torch

from metalrt import ArgumentError, _C

pytestmark = pytest.mark.gpu

CUDA_SRC = 'extern "C" __global__ void scale(const float* x, float* y, float s, int n) {}'
MSL_SRC = "kernel void scale(const device float* x [[buffer(0)]], device float* y [[buffer(1)]]) {}"


def cuda_library(device_index=0):
    return _C._RecordingLibrary(_C.parse_cuda(CUDA_SRC), memory="cuda", device_index=device_index, backend="cuda")


def test_cuda_tensors_bind_with_their_offset():
    base = torch.arange(64, dtype=torch.float32, device="cuda")
    x, y = base[8:40], torch.empty(32, device="cuda")
    k = cuda_library().kernel("scale")
    k(x, y, 2.0, 32, threads=32)
    args = k.last_launch["args"]
    assert args[0]["memory"] == "cuda" and args[0]["data"] == x.data_ptr()
    assert args[0]["storage"] == base.data_ptr() and args[0]["byte_offset"] == 32 and args[0]["nbytes"] == 128
    assert args[0]["writable"] is False and args[1]["writable"] is True
    assert [a["kind"] for a in args] == ["buffer", "buffer", "bytes", "bytes"]


def test_wrong_device_and_wrong_index_name_the_parameter():
    x = torch.zeros(8, device="cuda")
    with pytest.raises(ArgumentError, match=r"scale\(\): parameter 'x' \(const float\*, argument 0\) expects a tensor on "
                                            r"cuda:0 for the cuda backend, got a torch.Tensor of float32 on cpu"):
        cuda_library().kernel("scale")(x.cpu(), x, 1.0, 8, threads=8)
    with pytest.raises(ArgumentError, match="got a tensor on cuda:0, but the kernel runs on cuda:1"):
        cuda_library(device_index=1).kernel("scale")(x, x, 1.0, 8, threads=8)
    sim = _C._RecordingLibrary(_C.parse_msl(MSL_SRC)).kernel("scale")
    with pytest.raises(ArgumentError, match="expects a tensor on cpu for the sim backend, got a torch.Tensor of float32 on cuda:0"):
        sim(x, x, threads=8)
