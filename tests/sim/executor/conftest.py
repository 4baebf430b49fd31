"""Fixtures for the sim executor's tests.

These tests drive the executor directly: kernel libraries are written by hand in C++ against the
executor ABI (what the sim's front end would generate, see harness.h), compiled with clang, and
loaded with ``_C.sim_load(path, _C.parse_msl(signatures))``, where ``signatures`` is MSL that
declares the same kernels with the same parameters. So they test the executor and msl_sync.h
without depending on the front end.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INCLUDE = HERE.parents[2] / "src" / "metalrt" / "sim" / "include"

_C = pytest.importorskip("metalrt._C", reason="metalrt._C is not built (run scripts/dev-build)")
if not hasattr(_C, "sim_load"):
    pytest.skip("metalrt._C was built without the sim executor", allow_module_level=True)


def _clang_version(path: str) -> int:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r"clang version (\d+)", out)
    return int(match.group(1)) if match else 0


def find_clang() -> str | None:
    """A clang++ new enough for _Float16 and __bf16 arithmetic (17 or later)."""
    candidates = [os.environ["METALRT_CXX"]] if os.environ.get("METALRT_CXX") else []
    candidates += [f"clang++-{v}" for v in range(25, 16, -1)] + ["clang++"]
    for name in candidates:
        path = shutil.which(name)
        if path and _clang_version(path) >= 17:
            return path
    return None


class KernelBuilder:
    """Compiles hand-written kernel libraries (cached by content) and loads them."""

    def __init__(self, cxx: str, directory: Path):
        self.cxx = cxx
        self.directory = directory

    def compile(self, cpp: str, *, defines: dict[str, str] | None = None) -> Path:
        source = '#include "harness.h"\n' + textwrap.dedent(cpp)
        flags = [f"-D{k}={v}" for k, v in sorted((defines or {}).items())]
        key = hashlib.sha256((source + "\0" + " ".join(flags)).encode()).hexdigest()[:24]
        so = self.directory / f"k{key}.so"
        if not so.exists():
            src = self.directory / f"k{key}.cpp"
            src.write_text(source)
            cmd = [self.cxx, "-std=c++17", "-O2", "-shared", "-fPIC", "-fno-exceptions", "-fno-rtti",
                   "-Xclang", "-ffloat16-excess-precision=none",
                   "-fsanitize=array-bounds", "-fsanitize-trap=array-bounds",
                   f"-I{INCLUDE}", f"-I{HERE}", *flags, str(src), "-o", str(so) + ".tmp"]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise AssertionError(f"the test kernel library did not compile:\n{result.stderr}")
            os.replace(str(so) + ".tmp", so)
        return so

    def load(self, cpp: str, signatures: str, **kwargs):
        """The Library of the C++ kernels in `cpp`, declared in MSL by `signatures`."""
        so = self.compile(cpp, **kwargs)
        return _C.sim_load(str(so), _C.parse_msl(textwrap.dedent(signatures)))


@pytest.fixture(scope="session")
def kernels(tmp_path_factory) -> KernelBuilder:
    cxx = find_clang()
    if cxx is None:
        pytest.skip("needs clang++ 17 or newer (apt-get install clang-19, or set METALRT_CXX)")
    return KernelBuilder(cxx, tmp_path_factory.mktemp("sim-executor-kernels"))


@pytest.fixture
def sim_options():
    """Lets a test change the executor's options; restores them afterwards."""
    changed = []

    def set_options(**options):
        changed.append(_C.sim_set_options(**options))

    yield set_options
    for previous in reversed(changed):
        _C.sim_set_options(**previous)
