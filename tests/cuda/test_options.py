"""What a compile() turns into on CUDA: NVRTC's command line, the header folders, and the
disk-cache key. No GPU or NVRTC needed."""

from __future__ import annotations

import pytest

from metalrt._cuda import CudaDriver, header_dirs, nvrtc_options, wheel_lib_dirs
from metalrt._library import _options


def opts(**kw):
    return _options(kw.get("defines"), kw.get("constants"), kw.get("math", "safe"), kw.get("name_expressions"))


def test_defines_become_dash_d_in_a_stable_order():
    flags = nvrtc_options(opts(defines={"WIDTH": 4, "MODE": "fast", "EMPTY": None, "ON": True}))
    assert flags[0] == "--std=c++17"
    assert flags[1:] == ["-DEMPTY=", "-DMODE=fast", "-DON=1", "-DWIDTH=4"]


@pytest.mark.parametrize(
    "math, expected",
    [("safe", []), ("fast", ["--use_fast_math"]), ("relaxed", ["--ftz=true", "--prec-div=false", "--prec-sqrt=false"])],
)
def test_math_modes(math, expected):
    assert nvrtc_options(opts(math=math))[1:] == expected


def test_include_dirs_come_last():
    flags = nvrtc_options(opts(defines={"A": 1}), ["/cuda/include", "/cuda/include/cccl"])
    assert flags[-2:] == ["-I/cuda/include", "-I/cuda/include/cccl"]


def test_function_constants_are_refused_with_the_cuda_alternative():
    with pytest.raises(ValueError, match=r"constants=.*\(scale\).*defines="):
        nvrtc_options(opts(constants={"scale": 2.0}))


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_wheel_lib_dirs_finds_nvidia_wheel_folders_holding_nvrtc(tmp_path):
    site = tmp_path / "site-packages"
    _touch(site / "nvidia" / "cu13" / "lib" / "libnvrtc.so.13")
    _touch(site / "nvidia" / "cuda_nvrtc" / "lib" / "libnvrtc.so.12")
    _touch(site / "nvidia" / "cublas" / "lib" / "libcublas.so.13")
    found = wheel_lib_dirs([str(tmp_path / "nothing"), str(site)])
    assert found == [str(site / "nvidia" / "cu13" / "lib"), str(site / "nvidia" / "cuda_nvrtc" / "lib")]


def test_headers_come_from_the_toolkit_nvrtc_belongs_to(tmp_path):
    cu13 = tmp_path / "nvidia" / "cu13"
    _touch(cu13 / "include" / "cuda_fp16.h")
    _touch(cu13 / "include" / "cccl" / "nv" / "target")
    home = tmp_path / "cuda-home"
    _touch(home / "include" / "cuda_fp16.h")
    nvrtc = str(cu13 / "lib" / "libnvrtc.so.13")
    # CUDA 13 layout: <nv/target> only under cccl, so cccl joins the search
    assert header_dirs(nvrtc, {"CUDA_HOME": str(home)}) == [str(cu13 / "include"), str(cu13 / "include" / "cccl")]
    _touch(cu13 / "include" / "nv" / "target")
    assert header_dirs(nvrtc, {}) == [str(cu13 / "include")]


def test_headers_of_cuda12_wheels_and_of_cuda_home(tmp_path):
    nvidia = tmp_path / "nvidia"
    _touch(nvidia / "cuda_runtime" / "include" / "cuda_fp16.h")
    assert header_dirs(str(nvidia / "cuda_nvrtc" / "lib" / "libnvrtc.so.12"), {}) == [
        str(nvidia / "cuda_runtime" / "include")]
    home = tmp_path / "toolkit"
    _touch(home / "include" / "cuda_fp16.h")
    assert header_dirs(str(tmp_path / "x" / "lib" / "libnvrtc.so.13"), {"CUDA_HOME": str(home)})[0] == str(
        home / "include")


def _driver(nvrtc_version="13.0", target="sm_90", headers=("/cuda/include",)):
    d = CudaDriver()
    d._opened = {"driver": {}, "nvrtc": {"version_text": nvrtc_version, "path": "/x/libnvrtc.so.13"},
                 "headers": list(headers), "stand_ins": "abc"}
    d._target = {"arch": int(target.split("_")[1]), "cubin": target.startswith("sm_"), "name": target}
    return d


SRC = 'extern "C" __global__ void k(float* x) { x[0] = 1.0f; }'


def test_cache_key_is_stable_for_the_same_compile():
    assert _driver().cache_key(SRC, opts()) == _driver().cache_key(SRC, opts())


@pytest.mark.parametrize(
    "change",
    [
        lambda: _driver().cache_key(SRC + "\n", opts()),
        lambda: _driver().cache_key(SRC, opts(math="fast")),
        lambda: _driver().cache_key(SRC, opts(defines={"N": 1})),
        lambda: _driver().cache_key(SRC, opts(name_expressions=["k<float>"])),
        lambda: _driver(target="sm_100").cache_key(SRC, opts()),
        lambda: _driver(target="compute_90").cache_key(SRC, opts()),
        lambda: _driver(nvrtc_version="13.1").cache_key(SRC, opts()),
        lambda: _driver(headers=("/other/include",)).cache_key(SRC, opts()),
    ],
)
def test_cache_key_changes_with_everything_that_changes_the_image(change):
    assert change() != _driver().cache_key(SRC, opts())
