"""Finding libcuda and libnvrtc: the search order, and what a machine without them is told."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

import metalrt
from metalrt import _C, _registry
from metalrt.errors import BackendUnavailable

from cuda_test_env import driver_present

no_driver = pytest.mark.skipif(driver_present(), reason="this machine has an NVIDIA driver")


def test_driver_search_starts_with_the_loader_and_lists_driver_folders():
    candidates = _C.cuda_driver_candidates()
    assert candidates[0] == "libcuda.so.1"
    assert "/usr/local/nvidia/lib64/libcuda.so.1" in candidates
    assert all(c.endswith("libcuda.so.1") for c in candidates)


def test_nvrtc_search_order(monkeypatch):
    monkeypatch.setenv("METALRT_NVRTC", "/opt/mine/libnvrtc.so.13")
    monkeypatch.setenv("CUDA_HOME", "/opt/cuda-13")
    monkeypatch.delenv("CUDA_PATH", raising=False)
    got = _C.cuda_nvrtc_candidates(["/site/nvidia/cu13/lib"])
    assert got[0] == "/opt/mine/libnvrtc.so.13"
    wheel = got.index("/site/nvidia/cu13/lib/libnvrtc.so.13")
    home = got.index("/opt/cuda-13/lib64/libnvrtc.so.13")
    system = got.index("/usr/local/cuda/lib64/libnvrtc.so.13")
    bare = got.index("libnvrtc.so.13")
    assert 0 < wheel < home < system < bare
    # newest major first within each place, any major from 12 on
    assert got.index("/site/nvidia/cu13/lib/libnvrtc.so.13") < got.index("/site/nvidia/cu13/lib/libnvrtc.so.12")


@no_driver
def test_missing_driver_is_a_clear_backend_unavailable():
    with pytest.raises(BackendUnavailable) as info:
        _C.cuda_open_driver()
    message = str(info.value)
    assert message.startswith("[metalrt.cuda] libcuda.so.1 not found (looked in: libcuda.so.1, ")
    assert "NVIDIA GPU" in message and "'sim' backend" in message


@no_driver
def test_without_a_driver_cuda_is_listed_unavailable_with_its_reason():
    import metalrt

    assert "cuda" not in metalrt.backends()
    reason = _registry.unavailable_reason("cuda")
    assert reason and "libcuda.so.1 not found" in reason


@no_driver
def test_compiling_for_cuda_without_a_driver_raises_backend_unavailable_not_import_error():
    with pytest.raises(BackendUnavailable, match=r"libcuda\.so\.1 not found"):
        metalrt.compile('extern "C" __global__ void k(float* x) { x[0] = 1.0f; }', backend="cuda")


def _nvrtc_loadable_without_help() -> bool:
    for name in ("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return any(os.path.exists(f"/usr/local/cuda/lib64/{n}") for n in ("libnvrtc.so.13", "libnvrtc.so.12"))


@pytest.mark.skipif(_nvrtc_loadable_without_help(), reason="this machine has a system NVRTC")
def test_missing_nvrtc_names_where_it_looked_and_the_fix():
    # A fresh process: the search runs once per process and its verdict is kept.
    code = textwrap.dedent("""
        from metalrt import _C
        from metalrt.errors import BackendUnavailable
        try:
            _C.cuda_open_nvrtc(["/no/such/wheel/lib"])
        except BackendUnavailable as e:
            print(e)
        else:
            print("FOUND")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("METALRT_NVRTC", "CUDA_PATH", "LD_LIBRARY_PATH")}
    env["CUDA_HOME"] = "/no/such/cuda"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    message = out.stdout.strip()
    assert message.startswith("[metalrt.cuda] libnvrtc not found (looked in: /no/such/wheel/lib/libnvrtc.so.13"), (
        message + out.stderr)
    assert "/no/such/cuda/lib64/libnvrtc.so.13" in message
    assert "pip install nvidia-cuda-nvrtc" in message and "METALRT_NVRTC" in message
