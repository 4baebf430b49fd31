"""What metalrt._C may link against. A regression guard for a crash seen on the H100 machine:
with torch.cuda initialised first, an ostringstream in _C segfaulted inside libstdc++'s stream
code (the CUDA libraries PyTorch loads globally bring their own locale machinery). _C uses no
iostreams since; this keeps it so, and the GPU test runs the very call that crashed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from procenv import child_env

from metalrt import _C

IOSTREAM_MARKERS = ("basic_ostream", "basic_istream", "basic_ios", "ios_base", "basic_filebuf",
                    "basic_stringbuf", "num_put", "num_get", "std::locale")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads ELF dynamic symbols")
@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
def test_the_extension_imports_nothing_of_iostreams():
    out = subprocess.run(["nm", "-D", "--undefined-only", "-C", _C.__file__], capture_output=True, text=True,
                         check=True).stdout
    found = sorted({line.split(maxsplit=1)[-1] for line in out.splitlines()
                    if any(marker in line for marker in IOSTREAM_MARKERS)})
    assert not found, "metalrt._C must not use iostreams (see this file's docstring); it imports:\n" + "\n".join(found)


@pytest.mark.gpu
def test_archive_manifests_work_after_torch_cuda_loaded_its_libraries():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA")
    code = textwrap.dedent("""
        import torch
        torch.cuda.init()
        from metalrt import _C
        m = dict(format=1, key="k" * 64, device='odd "name"', payload_sha256="ab" * 32, payload_size=123, pipelines=2)
        assert _C.metal.parse_manifest_json(_C.metal.manifest_json(m)) == m
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
