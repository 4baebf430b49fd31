"""CUDA kernel signatures through core's parser and argument binding, as the CUDA backend binds
them (tensors on cuda:N, values packed in the C type's layout, no [[threadgroup]] parameters).
A recording library stands in for the GPU: it binds and checks exactly as CudaKernel's callers
do, then records the launch instead of running it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from metalrt import _C
from metalrt.errors import ArgumentError, LaunchError

SOURCE = r"""
#include <cuda_fp16.h>
#include <stdint.h>
struct Params { int count; float scale; };

extern "C" __global__ void values(int n, float a, long long m, __half h, float2 v, unsigned char u, Params p) {}
extern "C" __global__ void scale(const float* __restrict__ x, float* y, int64_t n) {}
template <typename T> __global__ void fill(T* out, T value, int n) {}
__global__ void cxx_named(float* out) {}
"""


def library(name_expressions=("fill<__half>", "fill<float>"), device_index=0):
    parsed = _C.parse_cuda(SOURCE, None, list(name_expressions))
    return parsed, _C._RecordingLibrary(parsed, memory="cuda", device_index=device_index, backend="cuda")


def test_parser_finds_extern_c_templates_and_cxx_kernels():
    parsed, _ = library()
    names = [k.name for k in parsed.kernels]
    assert set(names) == {"values", "scale", "cxx_named", "fill<__half>", "fill<float>"}
    fill = parsed.kernel("fill<__half>")
    assert fill.name_expression == "fill<__half>" and fill.function == "fill"
    assert [p.type_text for p in fill.params][:2] == ["__half*", "__half"]
    # a C++ (mangled) kernel needs its name resolved by NVRTC; an extern "C" one does not
    assert parsed.kernel("cxx_named").name_expression == "cxx_named"
    assert parsed.kernel("scale").name_expression == ""


def test_values_pack_in_the_c_layout():
    _, lib = library()
    k = lib.kernel("values")
    k(7, 0.5, -3, 1.5, (1.0, 2.0), 255, (4, 2.5), groups=1, group_size=32)
    args = k.last_launch["args"]
    assert [a["param"] for a in args] == ["n", "a", "m", "h", "v", "u", "p"]
    got = [a["bytes"] for a in args]
    assert got[0] == struct.pack("<i", 7)
    assert got[1] == struct.pack("<f", 0.5)
    assert got[2] == struct.pack("<q", -3)
    assert got[3] == np.float16(1.5).tobytes()
    assert got[4] == struct.pack("<ff", 1.0, 2.0)
    assert got[5] == bytes([255])
    assert got[6] == struct.pack("<if", 4, 2.5)
    assert [a["index"] for a in args] == list(range(7))  # CUDA parameters bind by position


def test_template_value_takes_the_instantiated_type():
    _, lib = library()
    with pytest.raises(ArgumentError, match=r"fill<__half>\(\): parameter 'out'"):
        lib.kernel("fill<__half>")(np.zeros(4, np.float16), 1.0, 4, groups=1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda k: k(2**31, 0.5, 0, 0.0, (0.0, 0.0), 0, (0, 0.0), groups=1), r"parameter 'n'.*2147483648"),
        (lambda k: k(1, 0.5, 0, 0.0, (0.0, 0.0), 256, (0, 0.0), groups=1), r"parameter 'u'"),
        (lambda k: k(1, 0.5, 0, 0.0, (0.0,), 0, (0, 0.0), groups=1), r"parameter 'v'"),
        (lambda k: k(1, 0.5, groups=1), r"expected 7 arguments .*missing 'm'"),
    ],
)
def test_value_errors_name_the_parameter(call, message):
    _, lib = library()
    with pytest.raises(ArgumentError, match=message):
        call(lib.kernel("values"))


def test_cpu_tensors_are_refused_with_the_fix():
    _, lib = library()
    x = torch.ones(8)
    with pytest.raises(ArgumentError) as info:
        lib.kernel("scale")(x, x, 8, threads=8)
    message = str(info.value)
    assert "scale(): parameter 'x' (const float* __restrict__, argument 0)" in message
    assert 'expects a tensor on cuda:0 for the cuda backend' in message and '.to("cuda:0")' in message


def test_threads_round_the_grid_up_to_whole_groups():
    _, lib = library()
    k = lib.kernel("values")
    k(1, 0.5, 0, 0.0, (0.0, 0.0), 0, (0, 0.0), threads=1000, group_size=256)
    launch = k.last_launch
    assert launch["groups"] == (4, 1, 1) and launch["group_size"] == (256, 1, 1)
    assert launch["threads"] == (1000, 1, 1)  # the kernel sees 1024 threads and checks its bound


def test_threadgroup_memory_is_the_dynamic_shared_memory_not_a_parameter():
    _, lib = library()
    k = lib.kernel("values")
    k(1, 0.5, 0, 0.0, (0.0, 0.0), 0, (0, 0.0), groups=2, group_size=64, threadgroup_memory={0: 4096})
    launch = k.last_launch
    assert launch["threadgroup_memory"] == {0: 4096}
    assert all(a["kind"] != "threadgroup" for a in launch["args"])


def test_launch_limits_come_from_the_kernel():
    parsed = _C.parse_cuda(SOURCE, None, [])
    limits = _C.KernelLimits()
    limits.max_threads_per_group = 512
    limits.max_threadgroup_memory = 49152
    lib = _C._RecordingLibrary(parsed, limits=limits, memory="cuda", backend="cuda")
    k = lib.kernel("values")
    args = (1, 0.5, 0, 0.0, (0.0, 0.0), 0, (0, 0.0))
    with pytest.raises(LaunchError, match=r"1024 threads exceeds the pipeline's maximum of 512"):
        k(*args, groups=1, group_size=1024)
    with pytest.raises(LaunchError, match=r"65536 bytes.*limit of 49152"):
        k(*args, groups=1, group_size=32, threadgroup_memory={0: 65536})


def test_launch_bounds_cap_the_group_size():
    src = 'extern "C" __global__ void __launch_bounds__(128) k(int n) {}'
    lib = _C._RecordingLibrary(_C.parse_cuda(src), memory="cuda", backend="cuda")
    with pytest.raises(LaunchError, match=r"maximum of 128"):
        lib.kernel("k")(1, groups=1, group_size=256)
