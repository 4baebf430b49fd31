"""Finding the host compiler: clang >= 17 from PATH or ziglang, METALRT_CXX to choose, and a
clear refusal of an older clang (which would compute half as float)."""

import importlib.util
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from metalrt.sim import compiler


def fake_compiler(tmp_path, version_line: str):
    script = tmp_path / "fake-clang++"
    script.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_finds_a_clang_new_enough_for_half_arithmetic():
    found = compiler.find()
    assert found.version[0] >= compiler.MIN_CLANG
    assert found.id.startswith(found.kind) and ".".join(map(str, found.version)) in found.id


def test_an_old_clang_is_refused_with_how_to_install_a_good_one(tmp_path, monkeypatch):
    monkeypatch.setenv("METALRT_CXX", fake_compiler(tmp_path, "Debian clang version 14.0.6"))
    with pytest.raises(compiler.CompilerNotFound) as info:
        compiler.find()
    message = str(info.value)
    assert "clang 14.0" in message and "older than 17" in message
    assert "apt-get install clang-19" in message and "pip install ziglang" in message
    assert "METALRT_CXX" in message


def test_something_that_is_not_clang_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("METALRT_CXX", fake_compiler(tmp_path, "g++ (Debian 12.2.0) 12.2.0"))
    with pytest.raises(compiler.CompilerNotFound) as info:
        compiler.find()
    assert "did not run as a clang" in str(info.value)


def test_metalrt_cxx_chooses_the_compiler(tmp_path, monkeypatch):
    chosen = compiler.find().command[0]
    monkeypatch.setenv("METALRT_CXX", chosen)
    assert compiler.find().command == (chosen,)


def test_the_sim_driver_reports_a_missing_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("METALRT_CXX", fake_compiler(tmp_path, "clang version 12.0.0"))
    from metalrt.sim.driver import SimDriver

    reason = SimDriver().unavailable_reason()
    assert reason is not None and "clang 12.0" in reason


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ziglang") is None, reason="ziglang is not installed")
def test_ziglang_builds_and_runs_kernels(tmp_path):
    child = textwrap.dedent("""
        import torch, metalrt
        from metalrt.sim import compiler
        assert compiler.find().kind == "zig", compiler.find()
        lib = metalrt.compile('''
        #include <metal_stdlib>
        using namespace metal;
        kernel void k(device half* y [[buffer(0)]], device const bfloat* b [[buffer(1)]],
                      uint i [[thread_position_in_grid]]) {
            y[i] = half(i) * 0.5h + half(float(b[i]));
        }
        ''', backend="sim")
        y = torch.zeros(8, dtype=torch.float16)
        b = torch.full((8,), 1.5, dtype=torch.bfloat16)
        lib.k(y, b, threads=8)
        assert torch.equal(y, torch.arange(8, dtype=torch.float16) * 0.5 + 1.5), y
        print("ok")
    """)
    env = dict(os.environ, METALRT_CXX=f"{sys.executable} -m ziglang c++",
               METALRT_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
