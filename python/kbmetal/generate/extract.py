"""The solution in a model's response: the Python module that defines ModelNew.

Models answer in many shapes: one fenced block with prose around it; several blocks (a first try,
then a corrected one; or the kernel source in one block and the module in the next); reasoning in
`<think>` tags before the answer; no fences at all; a block cut off at max_tokens. The rules:

1. Reasoning (`<think>...</think>`, `<thinking>...</thinking>`) is dropped.
2. Among fenced blocks tagged python (or untagged), the last one defining `class ModelNew` that
   parses wins: a model that corrects itself puts the correction last. If none parses, the last
   one defining ModelNew is taken anyway, so that the verdict shows the syntax error to the model.
3. Names that block uses but defines nowhere, defined by other Python blocks of the response
   (a kernel source string in a block of its own), bring those blocks in front of it.
4. Without fences, a response that is itself a module defining ModelNew is taken whole.
5. Otherwise there is no usable code: an `Extraction` with `source=None` and the reason, which
   becomes a verdict at stage "extract" and feedback to the model, never an exception.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n`]*$")
_MODELNEW = re.compile(r"^[ \t]*class[ \t]+ModelNew\b", re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3", "py3", ""}


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    closed: bool


@dataclass(frozen=True)
class Extraction:
    source: str | None  # None: no usable code
    reason: str  # how the source was found, or why there is none
    blocks: int = 0  # fenced blocks in the response
    truncated: bool = False  # the response was cut off (max tokens)

    @property
    def ok(self) -> bool:
        return self.source is not None


def fenced_blocks(text: str) -> list[Block]:
    """Fenced code blocks in order; a fence still open at the end gives an unclosed block."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, language = opening.group(1), opening.group(2).lower()
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) <= {fence[0]}:
                closed = True
                i += 1
                break
            body.append(lines[i])
            i += 1
        blocks.append(Block(language, "\n".join(body), closed))
    return blocks


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _free_names(source: str) -> set[str]:
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - _defined_names(tree) - set(dir(builtins))


def _with_dependencies(chosen: Block, python: list[Block]) -> tuple[str, int]:
    """The chosen block, preceded by the other Python blocks that define names it uses."""
    if not _parses(chosen.text):
        return chosen.text, 0
    missing = _free_names(chosen.text)
    if not missing:
        return chosen.text, 0
    helpers = []
    for block in python:
        if block is chosen or not _parses(block.text) or _MODELNEW.search(block.text):
            continue
        if missing & _defined_names(ast.parse(block.text)):
            helpers.append(block.text)
    return "\n\n".join(helpers + [chosen.text]), len(helpers)


def _finish(source: str) -> str:
    return source.strip("\n").rstrip() + "\n"


def extract(text: str | None, finish_reason: str | None = None) -> Extraction:
    truncated = finish_reason in ("length", "max_tokens", "MAX_TOKENS")
    cut = " (the response was cut off at max_tokens: raise max_tokens, or ask for a shorter answer)" if truncated else ""
    if not text or not text.strip():
        return Extraction(None, f"the response is empty{cut}", truncated=truncated)
    answer = _THINK.sub("", text)
    if not answer.strip():
        return Extraction(None, f"the response holds only reasoning and no answer{cut}", truncated=truncated)
    blocks = fenced_blocks(answer)
    python = [b for b in blocks if b.language in _PYTHON_TAGS or _MODELNEW.search(b.text)]
    defining = [b for b in python if _MODELNEW.search(b.text)]
    if defining:
        parsing = [b for b in defining if _parses(b.text)]
        chosen = parsing[-1] if parsing else defining[-1]
        source, helpers = _with_dependencies(chosen, python)
        how = "the last Python block defining ModelNew" if len(defining) > 1 else "the Python block defining ModelNew"
        if helpers:
            how += f", with {helpers} block(s) it depends on"
        if not chosen.closed:
            how += "; its fence was never closed" + (cut or "")
        return Extraction(_finish(source), how, len(blocks), truncated)
    if not blocks and _MODELNEW.search(answer) and _parses(answer):
        return Extraction(_finish(answer), "the whole response (no code fences)", 0, truncated)
    if blocks:
        languages = ", ".join(sorted({b.language or "untagged" for b in blocks}))
        reason = (f"the response has {len(blocks)} code block(s) ({languages}) but none is a Python module "
                  f"defining class ModelNew")
    elif _MODELNEW.search(answer):
        reason = "the response mentions class ModelNew but holds no complete Python module in a code block"
    else:
        reason = "the response has no code block and no class ModelNew"
    return Extraction(None, reason + cut, len(blocks), truncated)
