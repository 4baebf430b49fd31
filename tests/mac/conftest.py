"""Metal-only tests: every test module here sets `pytestmark = pytest.mark.mac`, and
tests/conftest.py skips marked tests where no Metal device exists. On a Mac:
`python -m pytest -m mac`."""

import pytest


@pytest.fixture
def torch_mps():
    torch = pytest.importorskip("torch")
    if not torch.backends.mps.is_available():
        pytest.skip("PyTorch has no MPS device here")
    return torch
