"""Shared test setup: hardware markers, and a private kernel cache per test session."""

import os
import sys
import tempfile

import pytest


def pytest_configure(config):
    # Kernels compiled by one test are reused by the next, but never leak into the user's cache.
    if "METALRT_CACHE_DIR" not in os.environ:
        os.environ["METALRT_CACHE_DIR"] = tempfile.mkdtemp(prefix="metalrt-test-cache-")


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _has_metal() -> bool:
    if sys.platform != "darwin":
        return False
    try:
        import torch

        return torch.backends.mps.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA")
    skip_mac = pytest.mark.skip(reason="needs a Mac with a Metal device")
    cuda, metal = _has_cuda(), _has_metal()
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(skip_gpu)
        if "mac" in item.keywords and not metal:
            item.add_marker(skip_mac)
