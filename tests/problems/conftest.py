"""Helpers for the problem-library tests: write throwaway problem files."""

import textwrap

import pytest


@pytest.fixture
def write_problem(tmp_path):
    """write_problem(source, name="001_case.py", level="level1") -> path of a new problem file."""

    def write(source: str, name: str = "001_case.py", level: str = "level1"):
        folder = tmp_path / level
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The problem tests run small tensors, two workers on two cores: intra-op threads only
    fight each other (a 100 microsecond op can take 100 milliseconds under contention)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
