"""NVRTC through the CUDA backend's compiler: images, lowered names, logs with the user's line
numbers, defines, the built-in header stand-ins, and the PTX fallback. Needs NVRTC, not a GPU."""

from __future__ import annotations

import pytest

from metalrt import _C
from metalrt._cuda import nvrtc_options
from metalrt._library import _options
from metalrt.errors import CompileError


def compile_cuda(source, nvrtc_headers=(), arch=90, cubin=True, names=(), **options):
    opts = _options(options.get("defines"), None, options.get("math", "safe"), list(names))
    return _C.cuda_compile(source, nvrtc_options(opts, list(nvrtc_headers)), list(names), arch, cubin, "kernel.cu")


SCALE = 'extern "C" __global__ void scale(const float* x, float* y, float a, int n) {\n' \
        '  int i = blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < n) y[i] = a * x[i];\n}\n'


def test_a_kernel_compiles_to_a_cubin_for_the_architecture(nvrtc):
    out = compile_cuda(SCALE)
    assert out["cubin"] and out["image"][:4] == b"\x7fELF"
    assert out["lowered"] == {}


def test_templates_resolve_through_name_expressions(nvrtc):
    src = "template <typename T> __global__ void fill(T* out, T v, int n) { if (threadIdx.x < n) out[threadIdx.x] = v; }"
    out = compile_cuda(src, names=["fill<float>", "fill<int>"])
    assert out["lowered"]["fill<float>"].startswith("_Z4fillIf")
    assert out["lowered"]["fill<int>"].startswith("_Z4fillIi")


def test_compile_errors_carry_the_log_and_the_users_line(nvrtc):
    src = SCALE.replace("a * x[i]", "a * x[i] + undefined_thing")
    with pytest.raises(CompileError) as info:
        compile_cuda(src)
    e = info.value
    assert e.line == 3
    assert str(e).startswith("[metalrt.cuda] NVRTC could not compile kernel.cu: kernel.cu:3: ")
    assert "undefined_thing" in str(e) and "if (i < n) y[i]" in str(e)  # the offending source line
    assert "kernel.cu(3): error" in e.log


def test_defines_reach_the_source(nvrtc):
    src = '#ifndef WIDTH\n#error "WIDTH is not defined"\n#endif\nextern "C" __global__ void k(float* x) { x[0] = WIDTH; }\n'
    assert compile_cuda(src, defines={"WIDTH": 4})["image"]
    with pytest.raises(CompileError, match="WIDTH is not defined") as info:
        compile_cuda(src)
    assert info.value.line == 2


def test_fast_math_changes_the_code(nvrtc):
    src = 'extern "C" __global__ void k(float* x) { x[threadIdx.x] = expf(x[threadIdx.x]) / x[threadIdx.x + 1]; }'
    assert compile_cuda(src)["image"] != compile_cuda(src, math="fast")["image"]


def test_standard_headers_are_served_by_stand_ins(nvrtc):
    src = r"""
#include <stdint.h>
#include <cstdint>
#include <cstddef>
#include <climits>
#include <cfloat>
#include <cmath>
#include <cuda_runtime.h>
extern "C" __global__ void k(float* y, int64_t n, size_t m) {
  const std::uint32_t i = threadIdx.x;
  if (i < n && i < m && INT_MAX > 0) y[i] = std::max(std::exp(y[i]), -FLT_MAX) + (isinf(INFINITY) ? 0.0f : 1.0f) + M_PI;
}
"""
    assert compile_cuda(src)["image"]
    assert set(_C.cuda_builtin_headers()) >= {"stdint.h", "cstdint", "cmath", "math.h", "cfloat", "cuda_runtime.h"}


def test_cuda_type_headers_come_from_the_toolkit(nvrtc, nvrtc_headers):
    src = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void k(const __half* x, __nv_bfloat16* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16(__half2float(x[i]) * 2.0f);
}
"""
    assert compile_cuda(src, nvrtc_headers)["image"]


def test_a_gpu_newer_than_nvrtc_gets_ptx_for_the_newest_known_architecture(nvrtc):
    target = _C.cuda_target_for_arch(900)  # compute capability 90.0: no NVRTC knows it
    assert target["cubin"] is False and target["name"].startswith("compute_")
    known = _C.cuda_target_for_arch(90)
    assert known == {"arch": 90, "cubin": True, "name": "sm_90"}
    out = compile_cuda(SCALE, arch=target["arch"], cubin=False)
    ptx = out["image"].rstrip(b"\0").decode()
    assert f".target sm_{target['arch']}" in ptx and ".entry scale" in ptx


def test_an_unknown_instantiation_is_a_compile_error(nvrtc):
    src = "template <typename T> __global__ void fill(T* out) { out[0] = T(); }"
    with pytest.raises(CompileError):
        compile_cuda(src, names=["fill<no_such_type>"])


def test_first_error_reads_nvrtc_logs():
    log = ('kernel.cu(3): warning #177-D: variable "t" was declared but never referenced\n'
           'kernel.cu(7): error: identifier "q" is undefined\n'
           '1 error detected in the compilation of "kernel.cu".\n')
    assert _C.cuda_first_error(log, "kernel.cu") == (7, 'error: identifier "q" is undefined')
    header = "/usr/local/cuda/include/cuda_fp16.hpp(408): error: expected an expression\n"
    line, text = _C.cuda_first_error(header, "kernel.cu")
    assert line == 0 and "cuda_fp16.hpp(408)" in text
