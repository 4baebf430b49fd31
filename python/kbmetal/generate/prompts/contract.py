"""What a prompt teaches about writing a solution, per style: the kernel contract of
docs/design.md, metalrt's launch vocabulary (its docstrings and README), and how candidates are
judged. Kept in one place so the three styles say the same things in the same order.

Styles:
    metal        MSL kernels through metalrt (judged on Metal or on the sim)
    cuda         CUDA kernels through metalrt (NVRTC), judged on CUDA
    load_inline  KernelBench's own style: torch.utils.cpp_extension.load_inline, judged on CUDA
"""

from __future__ import annotations

STYLES = ("metal", "cuda", "load_inline")
DEFAULT_STYLE = {"sim": "metal", "metal": "metal", "cuda": "cuda"}
BACKENDS = {"metal": ("sim", "metal"), "cuda": ("cuda",), "load_inline": ("cuda",)}
LANGUAGE = {"metal": "Metal Shading Language (MSL)", "cuda": "CUDA C++", "load_inline": "CUDA C++"}

_MODULE = """\
## What to write

A Python module that defines `class ModelNew(nn.Module)`, a drop-in replacement for `Model`:
- the same constructor arguments, and the same parameters and submodules created in the same order
  with the same shapes (weights are initialised from the same seed for both, so keep e.g.
  `self.linear = nn.Linear(...)` and use `self.linear.weight` in your kernel);
- `forward` takes the same inputs and returns outputs of the same shapes and dtypes, in new tensors
  (never an input or a view of one).
"""

_METAL = '''\
## Kernels: MSL through metalrt

```python
import torch
import torch.nn as nn
import metalrt

SOURCE = r"""
#include <metal_stdlib>
using namespace metal;

kernel void scale(device const float* x [[buffer(0)]],
                  device float* y [[buffer(1)]],
                  constant float& alpha [[buffer(2)]],
                  constant uint& n [[buffer(3)]],
                  uint i [[thread_position_in_grid]]) {
    if (i < n) y[i] = alpha * x[i];
}
"""

_lib = metalrt.compile(SOURCE)      # once, at import; cached by source, options and device

class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        _lib.scale(x, y, 2.0, x.numel(), threads=x.numel())
        return y
```

- `metalrt.compile(source, defines={"BLOCK": 256}, math="safe")` returns a library; `lib.NAME`
  is the kernel with that name. A template kernel needs explicit instantiations, each with
  `[[host_name("name_f32")]]`, and is called by that host name.
- Arguments bind in declaration order to the kernel's parameters that are not builtins
  (`[[thread_position_in_grid]]`, `[[threadgroup_position_in_grid]]`, `[[thread_index_in_simdgroup]]`...)
  and not `[[threadgroup(i)]]` memory. A tensor binds zero-copy as a `device T*` buffer: it must be
  contiguous, on the right device, and of the element type the parameter declares (float32 `float`,
  float16 `half`, bfloat16 `bfloat`, int32 `int`, int64 `long`, bool `bool`). A Python number is
  converted to the declared type of a `constant T&` or by-value parameter. A mismatch is an error
  naming the parameter.
- Launch with `threads=N` (an int or a tuple of up to 3: total threads; `group_size` defaults to
  256, or (16, 16), or (8, 8, 4); edge threadgroups are partial, so guard with a bounds check) or
  with `groups=G, group_size=S` (G threadgroups of S threads). `threadgroup_memory={i: bytes}`
  sizes each `[[threadgroup(i)]]` parameter; fixed-size `threadgroup float tile[256];` arrays
  declared in the kernel work too. Limits are checked before launch.
- MSL is C++14 with address spaces. Apple's compiler rejects `double`, recursion, the C++ standard
  library (`std::`), exceptions, `new`/`delete` and virtual functions: use `metal_stdlib` (`exp`,
  `fma`, `max`, `select`, `simd_sum`, `simd_max`, `simd_shuffle_down`...). Every thread of a
  threadgroup must reach each `threadgroup_barrier(mem_flags::mem_threadgroup)`. SIMD-groups have
  the width given below; reduce in registers with `simd_*` before going through threadgroup memory.
- Accumulate in `float` for `half` and `bfloat` data.
'''

_CUDA = '''\
## Kernels: CUDA through metalrt

```python
import torch
import torch.nn as nn
import metalrt

SOURCE = r"""
extern "C" __global__ void scale(const float* __restrict__ x, float* __restrict__ y, float alpha, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = alpha * x[i];
}
"""

_lib = metalrt.compile(SOURCE, backend="cuda")   # NVRTC, once, at import; cached

class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        _lib.scale(x, y, 2.0, x.numel(), threads=x.numel())
        return y
```

- `extern "C" __global__` kernels are known by their name. Templates are instantiated by name:
  `metalrt.compile(SOURCE, backend="cuda", name_expressions=["relu<float>", "relu<__half>"])`, then
  `lib["relu<float>"]`. Include `<cuda_fp16.h>` / `<cuda_bf16.h>` for `__half` / `__nv_bfloat16`;
  the host C++ standard library is not available to NVRTC.
- Arguments bind in declaration order: a tensor binds as a pointer to its data (it must be
  contiguous, on the GPU, and of the pointee's type: float32 `float`, float16 `__half`, bfloat16
  `__nv_bfloat16`, int32 `int`, int64 `long long`); a Python number is converted to the declared
  scalar type. A mismatch is an error naming the parameter.
- Launch with `threads=N` (total threads, blocks of `group_size`, default 256; the last block is
  partial: bounds-check) or `groups=G, group_size=S` (G blocks of S threads; tuples for 2-D/3-D).
  Dynamic shared memory (`extern __shared__`) is sized with `threadgroup_memory={0: bytes}`.
- Launches go to PyTorch's current stream; do not create streams of your own.
'''

_LOAD_INLINE = '''\
## Kernels: CUDA through torch.utils.cpp_extension.load_inline

```python
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = r"""
#include <torch/extension.h>

__global__ void scale_kernel(const float* x, float* y, float alpha, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = alpha * x[i];
}

torch::Tensor scale(torch::Tensor x, double alpha) {
    auto y = torch::empty_like(x);
    long n = x.numel();
    int block = 256;
    scale_kernel<<<(n + block - 1) / block, block, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<float>(), y.data_ptr<float>(), (float)alpha, n);
    return y;
}
"""
cpp_source = "torch::Tensor scale(torch::Tensor x, double alpha);"

_ext = load_inline(name="scale_ext", cpp_sources=cpp_source, cuda_sources=cuda_source,
                   functions=["scale"], verbose=False)

class ModelNew(nn.Module):
    def forward(self, x):
        return _ext.scale(x.contiguous(), 2.0)
```

- Give the extension a name of its own; build it once, at import.
- Launch on PyTorch's current stream (`#include <ATen/cuda/CUDAContext.h>` for
  `at::cuda::getCurrentCUDAStream()`); never on a stream of your own.
- Check dtypes and contiguity in the host function; accumulate in float for half inputs.
'''

_JUDGING = """\
## How it is judged

- Correctness: several trials, each with fresh random inputs from a seed you cannot predict and
  from several distributions (normal, offset and scaled, heavy-tailed), compared element by element
  with a float64 reference under a tight tolerance: a small multiple of PyTorch's own error on this
  problem (float32 is held to about 1e-5 relative, not 1e-2). One trial runs at sizes other than
  the ones shown, not multiples of 4 or 32: handle every size, never hard-code a shape.
- Your kernels must do the reference's computation. PyTorch ops that do it for you (matmul, conv,
  softmax, norms, reductions, elementwise math...) fail the check; allocating outputs and views
  (`torch.empty`, `empty_like`, `view`, `reshape`, `contiguous`) are fine.
- Detected and failed: returning an input or a view of one, changing inputs in place, caching
  results between calls, work left running on other threads, processes or streams, patching torch,
  metalrt or the timer, a `try`/`except` that falls back to PyTorch, computing in a lower precision
  than the inputs'.
- Speed: the median time of many runs (caches flushed between them) against PyTorch eager and
  `torch.compile`. Among correct kernels, the fastest wins.
"""

_ANSWER = """\
## Answer

Reply with the complete module in ONE ```python code block: imports, the kernel source, ModelNew.
Explanations, if any, go outside the block.
"""


def kernel_contract(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(STYLES)}")
    body = {"metal": _METAL, "cuda": _CUDA, "load_inline": _LOAD_INLINE}[style]
    return "\n".join([_MODULE, body, _JUDGING])


def answer_format() -> str:
    return _ANSWER
