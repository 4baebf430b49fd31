"""MTLBinaryArchive across processes: the first process compiles and writes the archive, a
second loads it and creates its pipeline without the backend compile, and a corrupt archive is
rebuilt, never fatal."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.mac

CHILD = textwrap.dedent("""
    import json, numpy as np, metalrt
    from metalrt import _C
    lib = metalrt.compile('''
    #include <metal_stdlib>
    using namespace metal;
    kernel void twice(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = 2.0f * float(i); }
    ''', backend="metal")
    y = np.zeros(64, dtype=np.float32)
    lib.twice(y, threads=64)
    assert (y == 2 * np.arange(64)).all()
    print(json.dumps(_C.metal.stats()))
""")


def run_child(cache_dir):
    env = dict(os.environ, METALRT_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_pipelines_from_the_archive(tmp_path):
    first = run_child(tmp_path)
    assert first["archive_misses"] == 1 and first["archive_hits"] == 0
    assert glob.glob(str(tmp_path / "metal" / "*.binarchive")), "the first process wrote no archive"
    second = run_child(tmp_path)
    assert second["archive_hits"] == 1 and second["archive_misses"] == 0
    assert second["last_archive_event"].startswith("load")


@pytest.mark.parametrize("damage", ["garbage", "truncate", "manifest"])
def test_a_corrupt_archive_is_rebuilt(tmp_path, damage):
    run_child(tmp_path)
    (payload,) = glob.glob(str(tmp_path / "metal" / "*.binarchive"))
    if damage == "garbage":
        with open(payload, "wb") as f:
            f.write(os.urandom(4096))
    elif damage == "truncate":
        with open(payload, "r+b") as f:
            f.truncate(os.path.getsize(payload) // 2)
    else:
        with open(payload[: -len(".binarchive")] + ".json", "w") as f:
            f.write("{")
    rebuilt = run_child(tmp_path)
    assert rebuilt["archives_rebuilt"] == 1 and rebuilt["archive_misses"] == 1
    assert run_child(tmp_path)["archive_hits"] == 1  # and the rebuilt archive serves the next one
