"""Which candidates pay for the CUDA profiler when their launches are counted (launches.py)."""

import pytest

from kbmetal.evaluator.launches import CudaLaunchCounter, needs_profiler


@pytest.mark.parametrize("source", [
    "from torch.utils.cpp_extension import load_inline\n",
    "import torch.utils.cpp_extension as ext\n",
    "import triton\nimport triton.language as tl\n",
    "    import cupy as cp\n",
    "from numba import cuda\n",
    "import ctypes\n",
    "torch.ops.load_library('my_ops.so')\n",
    "lib = torch.library.Library('mine', 'DEF')\n",
    "import warp as wp\n",
])
def test_other_ways_to_launch_kernels_switch_the_profiler_on(source):
    assert needs_profiler("import torch\n" + source)


@pytest.mark.parametrize("source", [
    "import metalrt\nlib = metalrt.compile(SRC, backend='cuda')\n",
    "# one warp-level reduction per row; faster than a triton kernel would be\nimport metalrt\n",
    'SRC = r"""extern "C" __global__ void k(float* y) { y[threadIdx.x] = 0; }"""\n',
])
def test_metalrt_only_candidates_are_counted_without_it(source):
    assert not needs_profiler(source)


def test_the_bundled_cuda_solutions_need_no_profiler():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "solutions" / "cuda"
    sources = sorted(root.glob("*.py"))
    assert sources
    assert [p.name for p in sources if needs_profiler(p.read_text())] == []


def test_the_cuda_counter_is_cheap_until_the_profiler_is_switched_on():
    counter = CudaLaunchCounter()
    assert counter.cheap and counter.source == "metalrt"
    with counter.counting() as count:
        pass
    assert count.value == 0
    counter.use_profiler()
    assert not counter.cheap and counter.source == "metalrt+cuda-profiler"
