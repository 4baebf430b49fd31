"""Prompts: the reference without its held-out sizes, the contract of each style, the device's
facts, and few-shot examples that are never the solution to the problem asked."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from kbmetal.generate.prompts import PromptSettings, first_messages
from kbmetal.problems import find_problem, load_problem


def _solution(problem_id: str) -> str:
    return f'"""{problem_id} example."""\nimport metalrt\nSOURCE = "// {problem_id}"\nclass ModelNew: pass\n'


@pytest.fixture
def examples(tmp_path, monkeypatch):
    """Bundled solutions of our own, so the test does not depend on which ones ship."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    for pid in ("L1-012", "L1-016", "L1-024", "L1-053"):  # relu, silu, softmax, max pool
        (folder / f"{pid}.py").write_text(_solution(pid))
    monkeypatch.setenv("KBMETAL_SOLUTIONS_DIR", str(folder))
    return folder


def _user(problem, style="metal", backend="sim", **kw) -> str:
    messages = first_messages(problem, PromptSettings(style, backend, **kw))
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_reference_is_shown_without_its_presets(examples):
    problem = find_problem("L1-012")
    assert "heldout" in problem.source and "1003" in problem.source
    text = _user(problem)
    assert "class Model(nn.Module)" in text and "def get_inputs" in text
    assert "PRESETS" not in text and "heldout" not in text and "1003" not in text


def test_each_style_teaches_its_contract(examples):
    problem = find_problem("L1-012")
    metal = _user(problem)
    assert "metalrt.compile(SOURCE)" in metal and "[[thread_position_in_grid]]" in metal
    assert "no double" not in metal and "rejects `double`" in metal
    cuda = _user(problem, "cuda", "cuda")
    assert 'backend="cuda"' in cuda and "name_expressions" in cuda and "extern \"C\" __global__" in cuda
    inline = _user(problem, "load_inline", "cuda")
    assert "load_inline(" in inline and "getCurrentCUDAStream" in inline
    for text in (metal, cuda, inline):
        assert "class ModelNew(nn.Module)" in text and "never hard-code a shape" in text
        assert "ONE ```python code block" in text


def test_style_and_backend_must_agree():
    with pytest.raises(ValueError, match="not for the sim backend"):
        PromptSettings("load_inline", "sim")
    with pytest.raises(ValueError, match="unknown prompt style"):
        PromptSettings("triton", "cuda")


def test_device_facts():
    from kbmetal.generate.prompts.device import device_facts

    sim = device_facts("sim")
    assert "SIMD-group width: 32 threads" in sim and "32 KiB" in sim and "unified memory" in sim
    assert "not performance" in sim
    gpu = SimpleNamespace(name="NVIDIA H100 80GB HBM3", target="sm_90", simd_width=32, max_threads_per_group=1024,
                          max_threadgroup_memory=232448, memory_bytes=80 * 2**30, peak_bandwidth_gbs=3350.0)
    cuda = device_facts("cuda", gpu)
    assert "NVIDIA H100 80GB HBM3 (sm_90)" in cuda and "warp width: 32" in cuda and "3350 GB/s" in cuda



def test_device_facts_without_the_device(monkeypatch):
    """Writing prompts for a backend this machine cannot run: the family's guarantees, said as such."""
    from kbmetal.generate.prompts import device

    monkeypatch.setattr(device, "_device", lambda backend: None)
    assert "an NVIDIA GPU: warps of 32 threads" in device.device_facts("cuda")
    assert "an Apple silicon GPU" in device.device_facts("metal")


def test_examples_prefer_the_category_and_never_show_the_asked_problem(examples):
    text = _user(find_problem("L1-013"), fewshot=2)  # leaky ReLU: an activation without a solution here
    first = text.index("### Example 1: ")
    assert text[first:].startswith("### Example 1: L1-012 (activation)") or \
        text[first:].startswith("### Example 1: L1-016 (activation)")
    assert "### Example 2: " in text and "### Example 3" not in text
    relu = _user(find_problem("L1-012"), fewshot=4)
    assert "// L1-012" not in relu  # its own solution is never an example
    assert "// L1-016" in relu


def test_the_same_problem_under_another_id_or_name_gets_no_solution_of_it(examples, tmp_path):
    source = find_problem("L1-024").source  # softmax, which has a solution in `examples`
    for name in ("99_Softmax.py", "077_row_probabilities.py"):
        folder = tmp_path / "upstream" / "level1"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source)
        problem = load_problem(folder / name)
        assert problem.id != "L1-024"
        assert "// L1-024" not in _user(problem, fewshot=4)
        shutil.rmtree(tmp_path / "upstream")


def test_no_examples_when_asked_for_none(examples):
    assert "Example 1" not in _user(find_problem("L1-013"), fewshot=0)
