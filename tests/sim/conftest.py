"""Backend selection for the MSL kernel tests, in one place.

The corpus (test_corpus.py) and the other front-end tests take the `target` fixture, which is
parametrised over the backends in $METALRT_TEST_BACKENDS (comma-separated; default: "sim", plus
"metal" on macOS). The same kernels, launches and PyTorch references then run on the sim here
and on a Mac's GPU there:

    METALRT_TEST_BACKENDS=sim,metal python -m pytest tests/sim/test_corpus.py

A backend that is not usable here is skipped with its driver's reason; "metal" carries the
`mac` marker, so tests/conftest.py skips it on machines without a Metal device.
"""

from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
metalrt = pytest.importorskip("metalrt")

TORCH_DEVICE = {"sim": "cpu", "metal": "mps", "cuda": "cuda"}


def _backends() -> list[str]:
    env = os.environ.get("METALRT_TEST_BACKENDS")
    if env:
        return [name.strip() for name in env.split(",") if name.strip()]
    return ["sim", "metal"] if sys.platform == "darwin" else ["sim"]


def _params():
    out = []
    for name in _backends():
        marks = [pytest.mark.mac] if name == "metal" else [pytest.mark.gpu] if name == "cuda" else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


class Target:
    """A backend and the torch device its buffers live on."""

    def __init__(self, backend: str):
        self.backend = backend
        self.device = TORCH_DEVICE.get(backend, "cpu")

    def compile(self, source: str, **kwargs):
        return metalrt.compile(source, backend=self.backend, **kwargs)

    def tensor(self, data, dtype=None):
        return torch.as_tensor(data, dtype=dtype).to(self.device)

    def randn(self, *shape, dtype=torch.float32, seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(*shape, generator=g).to(dtype).to(self.device)

    def rand(self, *shape, dtype=torch.float32, seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.rand(*shape, generator=g).to(dtype).to(self.device)

    def randint(self, low, high, *shape, dtype=torch.int32, seed=0):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(low, high, shape, generator=g, dtype=torch.int64).to(dtype).to(self.device)

    def zeros(self, *shape, dtype=torch.float32):
        return torch.zeros(*shape, dtype=dtype, device=self.device)

    def full(self, shape, value, dtype=torch.float32):
        return torch.full(shape, value, dtype=dtype, device=self.device)

    def sync(self):
        metalrt.synchronize(self.backend)

    def __repr__(self) -> str:
        return f"Target({self.backend})"


@pytest.fixture(params=_params())
def target(request) -> Target:
    name = request.param
    reason = metalrt._registry.unavailable_reason(name)
    if reason is not None:
        pytest.skip(f"backend {name!r} is not usable here: {reason}")
    return Target(name)


@pytest.fixture
def sim() -> Target:
    """The sim alone, for what only the sim reports (LaunchErrors for undefined behaviour)."""
    reason = metalrt._registry.unavailable_reason("sim")
    if reason is not None:
        pytest.skip(f"the sim is not usable here: {reason}")
    return Target("sim")
