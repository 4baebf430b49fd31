"""The sim driver's disk cache: a new process loads a compiled library without compiling, a
corrupt entry is rebuilt rather than loaded, and a failed compile leaves nothing behind."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import metalrt

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void triple(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = 3.0f * float(i); }
"""

CHILD = textwrap.dedent("""
    import sys, torch, metalrt
    from metalrt.sim import compiler
    calls = []
    real = compiler.compile_library
    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    compiler.compile_library = counting
    lib = metalrt.compile(sys.argv[1], backend="sim")
    y = torch.zeros(16)
    lib.triple(y, threads=16)
    assert torch.equal(y, 3 * torch.arange(16).float()), y
    print("compiled" if calls else "cached")
""")


def run_child(cache_dir: Path) -> str:
    env = dict(os.environ, METALRT_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-c", CHILD, SOURCE], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_a_new_process_loads_the_library_from_disk(tmp_path):
    assert run_child(tmp_path) == "compiled"
    assert run_child(tmp_path) == "cached"


def test_a_corrupt_library_is_rebuilt_not_loaded(tmp_path):
    assert run_child(tmp_path) == "compiled"
    (entry,) = (tmp_path / "sim").glob("*.so")
    entry.write_bytes(b"\x7fELF not really a shared object")
    assert run_child(tmp_path) == "compiled"
    assert run_child(tmp_path) == "cached"


def test_the_key_covers_the_compiler_and_the_shim_headers():
    from metalrt.sim.driver import SimDriver

    key = SimDriver().compiler_id()
    assert "shim[" in key and "abi[" in key and "-ffp-contract=off" in key


def test_a_failed_compile_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("METALRT_CACHE_DIR", str(tmp_path))
    from metalrt.sim.driver import SimDriver

    from metalrt._library import CompileOptions

    with pytest.raises(metalrt.CompileError):
        SimDriver().build(SOURCE.replace("3.0f", "three"), CompileOptions())
    assert not list((tmp_path / "sim").glob("*.so"))
