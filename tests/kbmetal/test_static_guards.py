"""Guards that read the source: each cheat pattern, and clean code that must not trip them."""

import pytest
from kbm_helpers import source
from kbmetal.evaluator.static_guards import scan

CLEAN = source(
    """
    import torch
    import torch.nn as nn
    import metalrt

    SRC = '''
    #include <metal_stdlib>
    using namespace metal;
    kernel void relu(device const float* x [[buffer(0)]], device float* y [[buffer(1)]],
                     uint i [[thread_position_in_grid]]) { y[i] = max(x[i], 0.0f); }
    '''
    try:
        lib = metalrt.compile(SRC)
    except metalrt.CompileError as exc:
        raise RuntimeError("kernel did not compile") from exc

    class ModelNew(nn.Module):
        def forward(self, x):
            y = torch.empty_like(x)
            lib.relu(x, y, threads=x.numel())
            return y
    """
)


def _guards(text, **kw):
    return {(f.guard, f.severity) for f in scan(text, **kw)}


def test_clean_solution_has_no_findings():
    assert scan(CLEAN) == []


@pytest.mark.parametrize(
    "snippet, what",
    [
        ("import torch\ntorch.matmul = lambda a, b: a\n", "patches torch.matmul"),
        ("import torch.nn.functional as F\nF.softmax = None\n", "patches torch.nn.functional.softmax"),
        ("from torch import nn\nnn.functional.relu = None\n", "patches torch.nn.functional.relu"),
        ("import time\ntime.perf_counter = lambda: 0.0\n", "patches time.perf_counter"),
        ("import torch\ntorch.Tensor.__eq__ = lambda a, b: True\n", "patches torch.Tensor.__eq__"),
        ("import torch\nsetattr(torch, 'allclose', lambda *a, **k: True)\n", "patches torch.allclose"),
        ("import sys\nsys.modules['torch'] = None\n", "sys.modules"),
        ("import metalrt\ndel metalrt.synchronize\n", "patches metalrt.synchronize"),
    ],
)
def test_monkey_patching_fails(snippet, what):
    findings = scan(snippet)
    assert any(f.guard == "monkey-patch" and f.severity == "fail" and what in f.message for f in findings), (
        findings
    )


def test_harness_import_fails_and_introspection_is_flagged():
    assert ("harness-access", "fail") in _guards("import kbmetal.evaluator.worker\n")
    assert ("harness-access", "fail") in _guards("from kbmetal import evaluate\n")
    assert ("harness-access", "flag") in _guards("import sys\nf = sys._getframe(1)\n")
    assert ("harness-access", "flag") in _guards("import gc\nobjs = gc.get_objects()\n")
    assert ("harness-access", "flag") in _guards("import ctypes\n")


@pytest.mark.parametrize(
    "handler",
    [
        "return torch.matmul(a, b)",
        "return F.softmax(x, dim=-1)",
        "return a @ b",
        "return super().forward(x)",
        "return Model()(x)",
        "return x.softmax(-1)",
    ],
)
def test_try_except_fallback_to_pytorch_fails(handler):
    text = source(
        f"""
        import torch
        import torch.nn.functional as F

        class ModelNew(torch.nn.Module):
            def forward(self, x, a=None, b=None):
                try:
                    return kernel(x)
                except Exception:
                    {handler}
        """
    )
    findings = scan(text)
    assert any(f.guard == "fallback" and f.severity == "fail" for f in findings), findings


def test_try_except_that_reraises_or_allocates_is_fine():
    text = source(
        """
        import torch
        try:
            import metalrt
        except ImportError as exc:
            raise RuntimeError("needs metalrt") from exc

        def f(x):
            try:
                return run(x)
            except ValueError:
                out = torch.empty_like(x)
                raise
        """
    )
    assert not any(f.guard == "fallback" for f in scan(text))


def test_precision_switches_fail_and_half_casts_are_noted():
    assert ("precision", "fail") in _guards("import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n")
    assert ("precision", "fail") in _guards("import torch\ntorch.set_float32_matmul_precision('medium')\n")
    assert ("precision", "info") in _guards("def f(x):\n    return x.half()\n", dtype="float32")
    assert ("precision", "info") in _guards("import torch\nT = torch.float16\n", dtype="float32")
    assert ("precision", "info") not in _guards("import torch\nT = torch.float16\n", dtype="float16")


def test_side_work_is_flagged():
    assert ("side-work", "flag") in _guards("import threading\n")
    assert ("side-work", "flag") in _guards("from concurrent.futures import ThreadPoolExecutor\n")
    assert ("side-work", "flag") in _guards("import os\nos.fork()\n")
    assert ("side-work", "flag") in _guards("import torch\ns = torch.cuda.Stream()\n")


def test_hard_coded_sizes():
    text = "N = 4096\nK = 777\nSRC = 'for (uint i = 0; i < 8192; ++i)'\nBLOCK = 256\n"
    sizes = {"N": 4096, "dim": 8192, "tiny": 3, "block": 256}
    findings = [f for f in scan(text, size_values=sizes, has_heldout=False) if f.guard == "hard-coded-size"]
    messages = " ".join(f.message for f in findings)
    assert "4096" in messages and "8192" in messages  # in code and inside a kernel's source
    assert "256" not in messages  # a power of two: thread counts and tiles, too common to mean much
    assert all(f.severity == "flag" for f in findings)
    with_heldout = [
        f for f in scan(text, size_values=sizes, has_heldout=True) if f.guard == "hard-coded-size"
    ]
    assert with_heldout and all(f.severity == "info" for f in with_heldout)


def test_syntax_error_raises():
    with pytest.raises(SyntaxError):
        scan("def f(:\n")
