"""The Metal backend on a real device: MPS tensors shared without copies and ordered with
PyTorch's own MPS work, host memory, launches and their limits, errors that leave the runtime
usable, function constants, math modes, and the timer."""

import numpy as np
import pytest

import metalrt
from metalrt import _C

pytestmark = pytest.mark.mac

ELEMENTWISE = """
#include <metal_stdlib>
using namespace metal;
kernel void axpy(device const float* x [[buffer(0)]],
                 device float* y [[buffer(1)]],
                 constant float& a [[buffer(2)]],
                 constant uint& n [[buffer(3)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < n) y[i] = a * x[i] + y[i];
}
"""


def metal_lib(source, **kw):
    return metalrt.compile(source, backend="metal", **kw)


def test_device_describes_the_gpu():
    d = metalrt.device("metal")
    assert d.backend == "metal" and d.name.startswith("Apple")
    assert d.max_threads_per_group >= 256 and d.simd_width == 32


def test_mps_tensors_bind_without_copies(torch_mps):
    torch = torch_mps
    x = torch.randn(10_000, device="mps")
    y = torch.randn(10_000, device="mps")
    expected = 2.5 * x + y
    metal_lib(ELEMENTWISE).axpy(x, y, 2.5, x.numel(), threads=x.numel())
    torch.testing.assert_close(y, expected)


def test_views_bind_with_their_storage_offset(torch_mps):
    torch = torch_mps
    base = torch.randn(4096 + 64, device="mps")
    x, y = base[64:], torch.zeros(4096, device="mps")
    metal_lib(ELEMENTWISE).axpy(x, y, 1.0, 4096, threads=4096)
    torch.testing.assert_close(y, base[64:])


def test_ordering_with_pytorchs_own_mps_work(torch_mps):
    torch = torch_mps
    lib = metal_lib(ELEMENTWISE)
    a = torch.randn(512, 512, device="mps")
    for step in range(20):
        x = (a @ a).flatten()           # PyTorch writes x on its MPS stream...
        y = torch.zeros_like(x)
        lib.axpy(x, y, 1.0, x.numel(), threads=x.numel())  # ...we read it on ours...
        total = y.sum()                 # ...and PyTorch reads what we wrote.
        torch.testing.assert_close(total, x.sum(), rtol=1e-4, atol=1e-2, msg=f"step {step}")


def test_synchronize_drains_both_queues(torch_mps):
    torch = torch_mps
    x = torch.ones(1 << 20, device="mps") * 3
    y = torch.zeros_like(x)
    metal_lib(ELEMENTWISE).axpy(x, y, 1.0, x.numel(), threads=x.numel())
    metalrt.synchronize()
    assert float(y[-1].cpu()) == 3.0


def test_cpu_tensors_aligned_and_not(torch_mps):
    torch = torch_mps
    lib = metal_lib(ELEMENTWISE)
    big = torch.randn(1 << 20)                  # large CPU allocations are usually page-aligned
    out = torch.zeros_like(big)
    lib.axpy(big, out, 1.0, big.numel(), threads=big.numel())
    torch.testing.assert_close(out, big)
    small = torch.randn(1001)[1:]               # an offset view: copied in and back
    out2 = torch.zeros(1000)
    lib.axpy(small, out2, 2.0, 1000, threads=1000)
    torch.testing.assert_close(out2, 2.0 * small)


def test_numpy_arrays(torch_mps):
    lib = metal_lib(ELEMENTWISE)
    x = np.arange(3000, dtype=np.float32)
    y = np.ones(3000, dtype=np.float32)
    lib.axpy(x, y, 0.5, 3000, threads=3000)
    np.testing.assert_allclose(y, 0.5 * np.arange(3000) + 1)


def test_read_only_numpy_input_is_not_written_back(torch_mps):
    lib = metal_lib(ELEMENTWISE)
    x = np.arange(100, dtype=np.float32)
    x.flags.writeable = False
    y = np.zeros(100, dtype=np.float32)
    lib.axpy(x, y, 1.0, 100, threads=100)
    np.testing.assert_array_equal(y, x)


REDUCE = """
#include <metal_stdlib>
using namespace metal;
kernel void block_sum(device const float* x [[buffer(0)]],
                      device float* out [[buffer(1)]],
                      threadgroup float* scratch [[threadgroup(0)]],
                      uint i [[thread_position_in_grid]],
                      uint t [[thread_position_in_threadgroup]],
                      uint g [[threadgroup_position_in_grid]],
                      uint n [[threads_per_threadgroup]]) {
    scratch[t] = x[i];
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint s = n / 2; s > 0; s /= 2) {
        if (t < s) scratch[t] += scratch[t + s];
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (t == 0) out[g] = scratch[0];
}
"""


def test_threadgroups_launch_with_threadgroup_memory(torch_mps):
    torch = torch_mps
    x = torch.randn(64 * 256, device="mps")
    out = torch.empty(64, device="mps")
    metal_lib(REDUCE).block_sum(x, out, groups=64, group_size=256, threadgroup_memory={0: 256 * 4})
    torch.testing.assert_close(out, x.view(64, 256).sum(1), rtol=1e-4, atol=1e-4)


def test_group_above_the_pipelines_maximum_is_refused_before_encoding(torch_mps):
    torch = torch_mps
    x, y = torch.zeros(4096, device="mps"), torch.zeros(4096, device="mps")
    k = metal_lib(ELEMENTWISE).axpy
    with pytest.raises(metalrt.LaunchError, match="threads per threadgroup"):
        k(x, y, 1.0, 4096, threads=4096, group_size=4096)


def test_wrong_dtype_names_the_parameter(torch_mps):
    torch = torch_mps
    x = torch.zeros(16, device="mps", dtype=torch.float16)
    y = torch.zeros(16, device="mps")
    with pytest.raises(metalrt.ArgumentError, match="'x'"):
        metal_lib(ELEMENTWISE).axpy(x, y, 1.0, 16, threads=16)


def test_compile_error_points_at_the_users_line():
    source = "#include <metal_stdlib>\nusing namespace metal;\n\nkernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {\n    y[i] = undefined_name;\n}\n"
    with pytest.raises(metalrt.CompileError) as e:
        metal_lib(source)
    assert e.value.line == 5
    assert "kernel.metal:5" in str(e.value) and "undefined_name" in str(e.value)
    assert "program_source" not in e.value.log


FAULT = """
#include <metal_stdlib>
using namespace metal;
kernel void wild(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    // Far past any mapping: the GPU's MMU faults.
    y[ulong(i) * 0x100000000ul + 0x4000000000ul] = 1.0f;
}
"""


def test_a_faulting_kernel_is_a_launch_error_and_the_runtime_stays_usable(torch_mps):
    torch = torch_mps
    y = torch.zeros(1024, device="mps")
    with pytest.raises(metalrt.LaunchError, match="'wild'"):
        metal_lib(FAULT).wild(y, threads=1024)
    x, z = torch.ones(1024, device="mps"), torch.zeros(1024, device="mps")
    metal_lib(ELEMENTWISE).axpy(x, z, 1.0, 1024, threads=1024)
    assert float(z.sum().cpu()) == 1024.0


CONSTANTS = """
#include <metal_stdlib>
using namespace metal;
constant float SCALE [[function_constant(0)]];
constant bool OFFSET [[function_constant(1)]];
kernel void k(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) {
    y[i] = float(i) * SCALE + (OFFSET ? 1.0f : 0.0f);
}
"""


def test_function_constants_by_name_and_index(torch_mps):
    torch = torch_mps
    y = torch.zeros(8, device="mps")
    metal_lib(CONSTANTS, constants={"SCALE": 2.0, 1: True}).k(y, threads=8)
    torch.testing.assert_close(y.cpu(), torch.arange(8.0) * 2 + 1)


NAN_CHECK = """
#include <metal_stdlib>
using namespace metal;
kernel void flag_nan(device const float* x [[buffer(0)]], device int* out [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) {
    out[i] = isnan(x[i]) ? 1 : 0;
}
"""


def test_default_math_is_safe_so_nan_is_seen(torch_mps):
    torch = torch_mps
    x = torch.tensor([1.0, float("nan"), 3.0], device="mps")
    out = torch.zeros(3, dtype=torch.int32, device="mps")
    metal_lib(NAN_CHECK).flag_nan(x, out, threads=3)
    assert out.cpu().tolist() == [0, 1, 0]


STRUCT = """
#include <metal_stdlib>
using namespace metal;
struct Params { float alpha; uint n; float4 shift; };
kernel void affine(device float4* y [[buffer(0)]], constant Params& p [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    if (i < p.n) y[i] = y[i] * p.alpha + p.shift;
}
"""


def test_struct_arguments_pack_like_metal_lays_them_out(torch_mps):
    torch = torch_mps
    y = torch.ones(10, 4, device="mps")
    metal_lib(STRUCT).affine(y, (2.0, 10, (1.0, 2.0, 3.0, 4.0)), threads=10)
    torch.testing.assert_close(y.cpu(), torch.tensor([[3.0, 4.0, 5.0, 6.0]] * 10))


def test_timer_measures_gpu_time_and_names_its_method(torch_mps):
    torch = torch_mps
    x = torch.randn(1 << 22, device="mps")
    y = torch.zeros_like(x)
    lib = metal_lib(ELEMENTWISE)
    with metalrt.timer() as idle:
        pass
    with metalrt.timer() as t:
        for _ in range(5):
            lib.axpy(x, y, 1.0, x.numel(), threads=x.numel())
    assert idle.ms == 0
    assert t.ms > 0
    assert t.method in ("metal-gpu-timestamps", "metal-command-buffer")


def test_in_memory_pipeline_cache_is_hit():
    # Two libraries from the same source and options share their pipelines (keyed by source hash,
    # entry, constants, options and device); metalrt.compile's own cache is bypassed here.
    before = _C.metal.stats()
    _C.metal.build(ELEMENTWISE).kernel("axpy")
    _C.metal.build(ELEMENTWISE).kernel("axpy")
    after = _C.metal.stats()
    assert after["libraries_compiled"] - before["libraries_compiled"] == 2
    assert after["pipeline_cache_hits"] - before["pipeline_cache_hits"] >= 1
    assert after["pipelines_created"] - before["pipelines_created"] <= 1
