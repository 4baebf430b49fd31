"""The bundled CUDA solutions (solutions/cuda): enough of them, each named after a problem that
exists, each compiling through metalrt on CUDA. Their correctness on a GPU is checked by
test_gpu_evaluator.py, through the evaluator."""

from __future__ import annotations

import pytest

from metalrt import _C
from metalrt._cuda import nvrtc_options
from metalrt._library import _options
from solution_sources import all_solutions, read


def test_at_least_fifteen_solutions_each_for_a_bundled_problem():
    from kbmetal.problems import load_problems

    ids = {p.id for p in load_problems("level1")}
    names = [p.stem for p in all_solutions()]
    assert len(names) >= 15
    assert set(names) <= ids, f"no such problems: {sorted(set(names) - ids)}"


@pytest.mark.parametrize("path", all_solutions(), ids=lambda p: p.stem)
def test_solution_signatures_parse(path):
    s = read(path)
    parsed = _C.parse_cuda(s.source, s.defines, s.name_expressions)
    assert parsed.kernels, f"{path.name} defines no kernel"
    for expr in s.name_expressions:
        parsed.kernel(expr)  # every requested instantiation is a kernel


@pytest.mark.parametrize("path", all_solutions(), ids=lambda p: p.stem)
def test_solution_compiles_with_nvrtc(path, nvrtc, nvrtc_headers):
    s = read(path)
    parsed = _C.parse_cuda(s.source, s.defines, s.name_expressions)
    names = sorted({k.name_expression for k in parsed.kernels if k.name_expression})
    opts = _options(s.defines or None, None, "safe", s.name_expressions)
    out = _C.cuda_compile(s.source, nvrtc_options(opts, nvrtc_headers), names, 90, True, "kernel.cu")
    assert out["image"][:4] == b"\x7fELF"
    assert set(out["lowered"]) == set(names)
