"""The Metal tests in tests/mac cannot run here, but they must stay collectable (no import or
syntax error hiding until someone has a Mac) and every one must carry the `mac` marker, so it is
skipped here rather than failing."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_mac_test_is_collected_and_marked():
    def collect(*extra):
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              str(ROOT / "tests" / "mac"), *extra],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        return [line for line in out.stdout.splitlines() if "::" in line]

    everything, marked = collect(), collect("-m", "mac")
    assert len(everything) >= 20, everything
    assert everything == marked, set(everything) - set(marked)


def test_mac_tests_skip_without_a_metal_device():
    if sys.platform == "darwin":
        pytest.skip("on a Mac these tests run for real")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          str(ROOT / "tests" / "mac")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "needs a Mac with a Metal device" in out.stdout
    assert " passed" not in out.stdout and "failed" not in out.stdout
