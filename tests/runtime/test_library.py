"""The Python face: backends, device, compile() and its caches, Library, timer, errors."""

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import metalrt
from metalrt import _registry

from .fake_driver import FakeDriver
from procenv import child_env

ROOT = Path(__file__).resolve().parents[2]

SRC = """
#include <metal_stdlib>
using namespace metal;
kernel void relu(device float* x [[buffer(0)]], constant uint& n [[buffer(1)]],
                 uint i [[thread_position_in_grid]]) { if (i < n) x[i] = max(x[i], 0.0f); }
kernel void source(device float* x [[buffer(0)]]) {}
"""


@pytest.fixture
def fake():
    driver = FakeDriver()
    _registry.register("fake", lambda: driver)
    metalrt.clear_cache()
    yield driver
    _registry.unregister("fake")
    metalrt.clear_cache()


def test_import_is_light():
    code = "import sys, metalrt; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=child_env()).stdout
    assert out.split() == ["False", "False"]


def test_registry_knows_the_builtin_backends_and_explains_missing_ones():
    assert {"metal", "cuda", "sim"} <= set(_registry.names())
    if sys.platform != "darwin":
        assert "metal" not in metalrt.backends()
        reason = _registry.unavailable_reason("metal")
        assert "macOS" in reason
        with pytest.raises(metalrt.BackendUnavailable, match="backend 'metal' is not usable here: .*macOS"):
            metalrt.device("metal")
    for name in metalrt.backends():
        assert _registry.unavailable_reason(name) is None


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'vulkan'; metalrt knows: metal, cuda, sim"):
        metalrt.device("vulkan")


def test_missing_and_broken_drivers_mean_unavailable_not_an_import_error():
    def missing():
        raise ModuleNotFoundError("No module named 'nowhere'", name="nowhere")

    def broken():
        raise RuntimeError("driver bug")

    class Refusing:
        name = "refusing"

        def unavailable_reason(self):
            return "no such device; install the frobnicator"

    for name, factory, reason in [("missing", missing, "ModuleNotFoundError"), ("broken", broken, "driver bug"),
                                  ("refusing", Refusing, "install the frobnicator")]:
        _registry.register(name, factory)
        try:
            assert name not in metalrt.backends()
            assert reason in _registry.unavailable_reason(name)
            with pytest.raises(metalrt.BackendUnavailable, match=reason):
                metalrt.compile(SRC, name)
        finally:
            _registry.unregister(name)


def test_default_order_prefers_gpus_and_the_environment_overrides(fake, monkeypatch):
    class Usable(FakeDriver):
        def __init__(self, name):
            super().__init__()
            self.name = name

    for name in ("sim", "cuda"):
        _registry.register(name, lambda name=name: Usable(name))
    try:
        if sys.platform != "darwin":
            assert metalrt.backends()[:2] == ["cuda", "sim"]
            assert metalrt.device().backend == "fake"  # Usable's device() says "fake"
            assert _registry.default_name() == "cuda"
        monkeypatch.setenv("METALRT_BACKEND", "fake")
        assert _registry.default_name() == "fake"
        assert metalrt.compile(SRC).backend == "fake"
    finally:
        _registry.unregister("sim")
        _registry.unregister("cuda")


def test_device(fake):
    d = metalrt.device("fake")
    assert (d.backend, d.name, d.max_threads_per_group, d.simd_width) == ("fake", "fake device", 512, 32)
    assert metalrt.device("fake") is d


def test_compile_caches_in_process(fake):
    lib = metalrt.compile(SRC, "fake")
    assert metalrt.compile(SRC, "fake") is lib
    assert fake.builds == 1
    assert metalrt.compile(SRC, "fake", defines={"X": 1}) is not lib
    assert metalrt.compile(SRC, "fake", math="fast") is not lib
    assert metalrt.compile(SRC, "fake", constants={"k": 2}) is not lib
    assert fake.builds == 4
    assert metalrt.compile(SRC, "fake", defines={"X": 1}) is metalrt.compile(SRC, "fake", defines={"X": "1"})
    assert fake.builds == 4


def test_options_are_canonical(fake):
    lib = metalrt.compile(SRC, "fake", defines={"B": True, "A": 2.5, "C": None}, constants={"z": 1, 0: (1, 2)})
    assert lib.options == metalrt.CompileOptions(defines=(("A", "2.5"), ("B", "1"), ("C", "")),
                                                 constants=((0, (1, 2)), ("z", 1)), math="safe")


@pytest.mark.parametrize(
    "kw,error,message",
    [
        ({"math": "fastest"}, ValueError, "math must be one of 'safe', 'fast', 'relaxed'"),
        ({"defines": {"bad name": 1}}, ValueError, "not a valid macro name"),
        ({"defines": {"X": [1]}}, TypeError, "defines\\['X'\\] must be a str, int, float, bool or None"),
        ({"constants": {"k": "x"}}, TypeError, "constants\\['k'\\] must be a bool, int, float or a tuple"),
        ({"defines": [("X", 1)]}, TypeError, "defines must be a dict"),
    ],
)
def test_bad_options(fake, kw, error, message):
    with pytest.raises(error, match=message):
        metalrt.compile(SRC, "fake", **kw)
    with pytest.raises(TypeError, match="source must be a str"):
        metalrt.compile(SRC.encode(), "fake")


def test_concurrent_compiles_build_once(fake):
    libs = []
    threads = [threading.Thread(target=lambda: libs.append(metalrt.compile(SRC + "//t", "fake"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(lib) for lib in libs}) == 1 and fake.builds == 1


def test_a_new_process_reuses_the_disk_cache(fake, tmp_path):
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / 'tests' / 'runtime')!r})
import metalrt
from metalrt import _registry
from fake_driver import FakeDriver
d = FakeDriver()
_registry.register("fake", lambda: d)
metalrt.compile({SRC!r}, "fake")
print(d.builds, d.compiles)
"""
    env = child_env(METALRT_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
            for _ in range(2)]
    assert runs == ["1 1\n", "1 0\n"]  # the second process built the Library but compiled nothing


def test_compile_errors_pass_through_with_log_and_line(fake):
    with pytest.raises(metalrt.CompileError) as e:
        metalrt.compile("\n\nkernel void f(float* x) {}", "fake")
    assert e.value.line == 3 and "kernel.metal:3: error:" in e.value.log
    again = pickle.loads(pickle.dumps(e.value))
    assert (str(again), again.log, again.line) == (str(e.value), e.value.log, e.value.line)


def test_library_access(fake):
    lib = metalrt.compile(SRC, "fake")
    assert isinstance(lib, metalrt.Library)
    assert lib.kernel_names() == ["relu", "source"] and list(lib) == ["relu", "source"] and len(lib) == 2
    relu = lib.relu
    assert isinstance(relu, metalrt.Kernel)
    assert lib["relu"] is relu and lib.relu is relu
    assert "relu" in dir(lib) and "relu" in lib
    assert repr(lib) == "<metalrt.Library on fake: relu, source>"
    assert lib.source == SRC  # the attribute wins; the kernel named "source" is reached by item
    assert lib["source"].name == "source"
    assert relu.signature.name == "relu" and [p.name for p in relu.signature.arguments] == ["x", "n"]
    with pytest.raises(AttributeError, match="no kernel named 'rleu' in this library; it has: relu, source"):
        lib.rleu
    with pytest.raises(KeyError) as e:
        lib["rleu"]
    assert str(e.value) == "no kernel named 'rleu' in this library; it has: relu, source"
    assert not hasattr(lib, "rleu")


def test_launch_through_the_library(fake):
    import numpy as np

    lib = metalrt.compile(SRC, "fake")
    x = np.zeros(10, np.float32)
    lib.relu(x, 10, threads=10)
    launch = lib.relu.last_launch
    assert launch["threads"] == (10, 1, 1) and launch["args"][0]["nbytes"] == 40
    with pytest.raises(metalrt.LaunchError, match="maximum of 512"):
        lib.relu(x, 10, threads=1024, group_size=1024)
    with pytest.raises(metalrt.ArgumentError, match="relu\\(\\): expected 2 arguments \\(x, n\\), got 1; missing 'n'"):
        lib.relu(x, threads=10)


def test_timer_and_synchronize(fake):
    with metalrt.timer("fake") as t:
        pass
    assert t.ms == 1.25 and t.method == "fake-clock" and t.ms == 1.25
    assert fake.timers[0].events == ["start", "stop", "elapsed"]  # elapsed read once
    running = metalrt.timer("fake")
    with pytest.raises(RuntimeError, match="has not stopped"):
        running.ms
    metalrt.synchronize("fake")
    assert fake.synchronized == 1


def test_error_classes():
    assert issubclass(metalrt.ArgumentError, TypeError) and issubclass(metalrt.LaunchError, RuntimeError)
    for cls in (metalrt.CompileError, metalrt.ArgumentError, metalrt.LaunchError, metalrt.BackendUnavailable,
                metalrt.KernelNotFound):
        assert issubclass(cls, metalrt.MetalrtError)
