"""Fixtures for the CUDA backend's tests.

Three tiers: tests that need nothing (the search, its messages, option and key composition,
argument binding through the core parser); tests that need NVRTC only (compiling, no GPU: they run
wherever an NVRTC wheel or toolkit is installed, and skip elsewhere); and `@pytest.mark.gpu` tests
that need an NVIDIA GPU.
"""

from __future__ import annotations

import pytest

from metalrt import _C
from metalrt.errors import BackendUnavailable


@pytest.fixture(scope="session")
def nvrtc() -> dict:
    """NVRTC as the CUDA driver would find it; the test is skipped where there is none."""
    from metalrt._cuda import wheel_lib_dirs

    try:
        return _C.cuda_open_nvrtc(wheel_lib_dirs())
    except BackendUnavailable as e:
        pytest.skip(f"needs NVRTC (pip install nvidia-cuda-nvrtc nvidia-cuda-runtime): {e}")


@pytest.fixture(scope="session")
def nvrtc_headers(nvrtc) -> list[str]:
    from metalrt._cuda import header_dirs

    dirs = header_dirs(nvrtc["path"])
    if not dirs:
        pytest.skip("needs the CUDA headers beside NVRTC (pip install nvidia-cuda-runtime) or CUDA_HOME")
    return dirs
