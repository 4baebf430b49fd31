"""The CUDA backend on a real GPU: compile, bind, launch, order with PyTorch, time, cache, fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import metalrt  # noqa: E402
from metalrt import _C, _registry  # noqa: E402
from metalrt.errors import ArgumentError, CompileError, LaunchError  # noqa: E402

pytestmark = pytest.mark.gpu

SAXPY = r"""
extern "C" __global__ void saxpy(const float* x, float* y, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
extern "C" __global__ void fill(float* out, float value, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}
extern "C" __global__ void copy(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = x[i];
}
extern "C" __global__ void grid2d(float* out, int rows, int cols) {
  int c = blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y * blockDim.y + threadIdx.y;
  if (r < rows && c < cols) out[r * cols + c] = r * 1000.0f + c;
}
"""


@pytest.fixture(scope="module")
def lib():
    return metalrt.compile(SAXPY, backend="cuda")


def test_the_default_device_is_the_gpu():
    if not os.environ.get("METALRT_BACKEND"):
        assert metalrt.device().backend == "cuda"
    dev = metalrt.device("cuda")
    props = torch.cuda.get_device_properties(dev.index)
    assert dev.name == props.name
    assert dev.target == f"sm_{props.major}{props.minor}"
    assert (dev.simd_width, dev.max_threads_per_group) == (32, 1024)
    assert dev.max_threadgroup_memory >= 48 * 1024
    assert dev.memory_bytes == props.total_memory


def test_saxpy_matches_pytorch(lib):
    n = 1000
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    expected = 2.5 * x + y
    lib.saxpy(x, y, 2.5, n, threads=n)  # same stream as PyTorch: no synchronisation needed
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


def test_threads_round_up_and_the_kernel_bound_protects_the_tail(lib):
    n = 1000
    out = torch.full((n + 64,), -1.0, device="cuda")
    lib.fill(out, 3.0, n, threads=n, group_size=256)  # 4 groups: 1024 threads for 1000 elements
    assert torch.all(out[:n] == 3.0) and torch.all(out[n:] == -1.0)


def test_two_dimensional_grids(lib):
    rows, cols = 37, 53
    out = torch.empty(rows, cols, device="cuda")
    lib.grid2d(out, rows, cols, threads=(cols, rows), group_size=(16, 16))
    r = torch.arange(rows, device="cuda").float()[:, None]
    c = torch.arange(cols, device="cuda").float()[None, :]
    torch.testing.assert_close(out, r * 1000 + c, rtol=0, atol=0)
    out.zero_()
    lib.grid2d(out, rows, cols, groups=((cols + 7) // 8, (rows + 7) // 8), group_size=(8, 8))
    torch.testing.assert_close(out, r * 1000 + c, rtol=0, atol=0)


def test_views_bind_at_their_storage_offset(lib):
    base = torch.zeros(300, device="cuda")
    lib.fill(base[100:200], 1.0, 100, threads=100)
    assert base[100:200].eq(1).all() and base[:100].eq(0).all() and base[200:].eq(0).all()


def test_templates_build_through_name_expressions():
    src = "template <typename T> __global__ void scale(T* x, T a, int n) { int i = threadIdx.x; if (i < n) x[i] *= a; }"
    lib = metalrt.compile(src, backend="cuda", name_expressions=["scale<float>", "scale<double>"])
    assert set(lib.kernel_names()) == {"scale<float>", "scale<double>"}
    for dtype in (torch.float32, torch.float64):
        x = torch.arange(8, dtype=dtype, device="cuda")
        kernel = lib["scale<float>"] if dtype == torch.float32 else lib["scale<double>"]
        kernel(x, 3.0, 8, threads=8)
        assert torch.equal(x, torch.arange(8, dtype=dtype, device="cuda") * 3)


def test_half_bfloat16_and_structs_by_value():
    src = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>
struct Affine { float scale; float shift; };
extern "C" __global__ void affine(const __half* x, __nv_bfloat16* y, Affine f, __half bias, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16(__half2float(x[i]) * f.scale + f.shift + __half2float(bias));
}
"""
    lib = metalrt.compile(src, backend="cuda")
    x = torch.randn(777, device="cuda").half()
    y = torch.empty(777, device="cuda", dtype=torch.bfloat16)
    lib.affine(x, y, (2.0, 0.5), 0.25, 777, threads=777)
    torch.testing.assert_close(y, (x.float() * 2 + 0.75).bfloat16(), rtol=0, atol=0)


REVERSE = r"""
extern "C" __global__ void reverse_chunks(const float* x, float* y, int chunk) {
  extern __shared__ float buf[];
  const float* src = x + (long long)blockIdx.x * chunk;
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) buf[i] = src[i];
  __syncthreads();
  float* dst = y + (long long)blockIdx.x * chunk;
  for (int i = threadIdx.x; i < chunk; i += blockDim.x) dst[i] = buf[chunk - 1 - i];
}
"""


@pytest.mark.parametrize("chunk", [1000, 16384, 40000])  # 4 KB, 64 KB and 160 KB: the last two need the opt-in
def test_dynamic_shared_memory_including_the_opt_in_above_48k(chunk):
    lib = metalrt.compile(REVERSE, backend="cuda")
    if chunk * 4 > metalrt.device("cuda").max_threadgroup_memory:
        pytest.skip("this GPU has less shared memory")
    x = torch.randn(3 * chunk, device="cuda")
    y = torch.empty_like(x)
    lib.reverse_chunks(x, y, chunk, groups=3, group_size=256, threadgroup_memory={0: chunk * 4})
    assert torch.equal(y, x.view(3, chunk).flip(1).reshape(-1))


def test_launch_limits_are_checked_before_launching():
    lib = metalrt.compile(REVERSE, backend="cuda")
    limit = metalrt.device("cuda").max_threadgroup_memory
    x = torch.randn(1024, device="cuda")
    with pytest.raises(LaunchError, match=rf"exceeds the limit of {limit} bytes"):
        lib.reverse_chunks(x, x, 8, groups=1, group_size=32, threadgroup_memory={0: limit + 4})
    with pytest.raises(LaunchError, match=r"threadgroup_memory=\{0: nbytes\}"):
        lib.reverse_chunks(x, x, 8, groups=1, group_size=32, threadgroup_memory={1: 64})
    with pytest.raises(LaunchError, match=r"128 threads along z, above the device's limit of 64"):
        lib.reverse_chunks(x, x, 8, groups=1, group_size=(1, 1, 128))
    with pytest.raises(LaunchError, match=r"2048 threads exceeds the pipeline's maximum of 1024"):
        lib.reverse_chunks(x, x, 8, groups=1, group_size=2048)


def test_argument_errors_name_the_parameter(lib):
    y = torch.zeros(8, device="cuda")
    with pytest.raises(ArgumentError, match=r"saxpy\(\): parameter 'x' .*expects a tensor on cuda:0"):
        lib.saxpy(torch.zeros(8), y, 1.0, 8, threads=8)
    with pytest.raises(ArgumentError, match=r"parameter 'x' .*expects a float32 tensor, got float64"):
        lib.saxpy(torch.zeros(8, device="cuda", dtype=torch.float64), y, 1.0, 8, threads=8)
    with pytest.raises(ArgumentError, match=r"parameter 'y' .*non-contiguous"):
        lib.saxpy(y, torch.zeros(8, 2, device="cuda")[:, 0], 1.0, 8, threads=8)
    with pytest.raises(ArgumentError, match=r"parameter 'n'"):
        lib.saxpy(y, y, 1.0, 2**40, threads=8)


def test_compile_errors_carry_nvrtc_log_and_line():
    with pytest.raises(CompileError) as info:
        metalrt.compile('extern "C" __global__ void k(float* x) {\n  x[0] = nope;\n}\n', backend="cuda")
    assert info.value.line == 2 and "nope" in info.value.log


def test_launches_go_on_pytorchs_current_stream(lib):
    n = 1 << 20
    x = torch.randn(n, device="cuda")
    staged = torch.full_like(x, float("nan"))
    y = torch.full_like(x, float("nan"))
    torch.cuda.synchronize()
    side = torch.cuda.Stream()  # non-blocking: nothing orders it with the default stream
    with torch.cuda.stream(side):
        torch.cuda._sleep(50_000_000)  # keeps the side stream busy for tens of milliseconds
        torch.mul(x, 2, out=staged)
        lib.copy(staged, y, n, threads=n)  # reads `staged` only if it runs after the mul, on `side`
        out = y + 1
    side.synchronize()
    assert torch.equal(out, x * 2 + 1)


def test_timer_uses_events_on_the_current_stream():
    with metalrt.timer("cuda") as short:
        torch.cuda._sleep(1_000_000)
    with metalrt.timer("cuda") as long:
        torch.cuda._sleep(20_000_000)
    assert short.method == "cuda-events"
    assert 0 < short.ms < long.ms


def test_synchronize_waits_for_the_device():
    torch.cuda._sleep(20_000_000)
    done = torch.cuda.Event()
    done.record()
    metalrt.synchronize("cuda")
    assert done.query()


def test_compile_is_cached_in_process_and_counted_launches(lib):
    driver = _registry.driver("cuda")
    before = dict(driver.stats)
    assert metalrt.compile(SAXPY, backend="cuda") is lib
    assert driver.stats == before
    x = torch.zeros(4, device="cuda")
    count = _C.launch_count()
    lib.fill(x, 1.0, 4, threads=4)
    assert _C.launch_count() == count + 1


def test_kernel_describes_itself(lib):
    k = lib.saxpy
    assert k.backend == "cuda"
    assert [p.name for p in k.signature.arguments] == ["x", "y", "a", "n"]
    assert 0 < k.limits.max_threads_per_group <= 1024 and k.limits.simd_width == 32


_CHILD = textwrap.dedent("""
    import json, torch, metalrt
    from metalrt import _registry
    src = 'extern "C" __global__ void twice(float* x, int n) { int i = threadIdx.x; if (i < n) x[i] *= 2.0f; }'
    lib = metalrt.compile(src, backend="cuda")
    x = torch.ones(16, device="cuda")
    lib.twice(x, 16, threads=16)
    print(json.dumps({"stats": _registry.driver("cuda").stats, "ok": bool(torch.all(x == 2))}))
""")


def _child(code, cache_dir):
    env = dict(os.environ, METALRT_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def test_a_new_process_loads_from_the_disk_cache_without_nvrtc(tmp_path):
    first = json.loads(_child(_CHILD, tmp_path))
    second = json.loads(_child(_CHILD, tmp_path))
    assert first["ok"] and second["ok"]
    assert first["stats"]["nvrtc_compiles"] == 1 and first["stats"]["disk_hits"] == 0
    assert second["stats"]["nvrtc_compiles"] == 0 and second["stats"]["disk_hits"] == 1


def test_a_corrupt_cache_entry_is_rebuilt(tmp_path):
    json.loads(_child(_CHILD, tmp_path))
    for image in (tmp_path / "cuda").glob("*.img"):
        image.write_bytes(b"\x7fELF not a cubin")
    again = json.loads(_child(_CHILD, tmp_path))
    assert again["ok"] and again["stats"]["nvrtc_compiles"] == 1


def test_a_faulting_kernel_is_reported_naming_it(tmp_path):
    code = textwrap.dedent("""
        import torch, metalrt
        from metalrt.errors import LaunchError
        src = 'extern "C" __global__ void wild_write(float* x) { x[(1ll << 40) + threadIdx.x] = 1.0f; }'
        lib = metalrt.compile(src, backend="cuda")
        lib.wild_write(torch.zeros(4, device="cuda"), threads=32)
        try:
            metalrt.synchronize("cuda")
        except LaunchError as e:
            print("LaunchError:", e)
    """)
    message = _child(code, tmp_path)
    assert message.startswith("LaunchError: [metalrt.cuda] waiting for the device failed: CUDA_ERROR_ILLEGAL_ADDRESS")
    assert "the last one metalrt launched was 'wild_write'" in message
