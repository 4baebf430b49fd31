"""Taking the solution out of a response: fences, several blocks, prose, reasoning, truncation,
and no code at all (a reason, never an exception)."""

from __future__ import annotations

import textwrap

from kbmetal.generate.extract import extract, fenced_blocks

MODULE = textwrap.dedent('''\
    import torch
    import torch.nn as nn

    class ModelNew(nn.Module):
        def forward(self, x):
            return x.clone()
''')


def fence(body: str, language: str = "python") -> str:
    return f"```{language}\n{body.rstrip()}\n```"


def test_one_block_with_prose_around_it():
    found = extract(f"Here you go:\n\n{fence(MODULE)}\n\nThis is fast because...")
    assert found.ok and found.source == MODULE and found.blocks == 1


def test_the_last_block_defining_modelnew_wins():
    first = MODULE.replace("x.clone()", "x")
    found = extract(f"{fence(first)}\nWait, that aliases the input. Corrected:\n{fence(MODULE)}")
    assert found.source == MODULE and "last" in found.reason


def test_a_block_that_does_not_parse_loses_to_one_that_does():
    broken = MODULE.replace("def forward(self, x):", "def forward(self, x)")
    found = extract(f"{fence(MODULE)}\nor shorter:\n{fence(broken)}")
    assert found.source == MODULE


def test_only_broken_code_is_still_taken_so_the_verdict_shows_the_syntax_error():
    broken = MODULE.replace("def forward(self, x):", "def forward(self, x)")
    assert extract(fence(broken)).source == broken


def test_a_kernel_source_in_a_block_of_its_own_is_brought_in():
    helper = 'SOURCE = r"""kernel void k() {}"""\n'
    module = MODULE.replace("import torch.nn as nn\n", "import torch.nn as nn\nimport metalrt\n_lib = metalrt.compile(SOURCE)\n")
    found = extract(f"The kernel:\n{fence(helper)}\nThe module:\n{fence(module)}")
    assert found.source.startswith("SOURCE = r") and "class ModelNew" in found.source
    assert "depends on" in found.reason


def test_other_languages_and_tildes():
    text = f"{fence('kernel void k() {}', 'metal')}\n~~~py\n{MODULE}~~~\n"
    assert [b.language for b in fenced_blocks(text)] == ["metal", "py"]
    assert extract(text).source == MODULE


def test_reasoning_is_dropped():
    decoy = MODULE.replace("x.clone()", "x * 0")
    found = extract(f"<think>maybe\n{fence(decoy)}\n</think>\nFinal answer:\n{fence(MODULE)}")
    assert found.source == MODULE
    assert not extract(f"<think>{fence(MODULE)} and more thoughts").ok  # never closed: all reasoning


def test_a_bare_module_without_fences():
    assert extract(MODULE).source == MODULE


def test_truncated_response():
    cut = "```python\n" + MODULE[:60]
    found = extract(cut, finish_reason="length")
    assert found.truncated
    nothing = extract("Let me think about the tiling first. The", finish_reason="length")
    assert not nothing.ok and "cut off at max_tokens" in nothing.reason


def test_no_code_has_a_reason():
    assert extract("").reason == "the response is empty"
    assert "no code block" in extract("I cannot help with that.").reason
    found = extract(fence("kernel void relu() {}", "metal"))
    assert not found.ok and "1 code block(s) (metal)" in found.reason
    assert not extract(fence("print('hi')")).ok
