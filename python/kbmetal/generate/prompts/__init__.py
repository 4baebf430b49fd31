"""Prompts: the first message of a chain, per backend style.

    settings = PromptSettings(style="metal", backend="sim", fewshot=2)
    messages = first_messages(problem, settings)          # [system, user]

The user message holds, in order: the task, the reference (PRESETS hidden), the kernel contract
of the style, how candidates are judged, the device's facts, the few-shot examples, and the
answer format. A second-round prompt adds the best kernels so far (`Shown`). Everything in a
prompt follows from the problem, the settings and the device, so the same run rebuilds the same
prompt after a kill and the response cache answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contract import (
    BACKENDS,
    DEFAULT_STYLE,
    LANGUAGE,
    STYLES,
    answer_format,
    kernel_contract,
)
from .device import device_facts
from .fewshot import Example, select_examples
from .reference import shown_source


@dataclass(frozen=True)
class PromptSettings:
    style: str  # metal | cuda | load_inline
    backend: str  # where candidates are judged: sim | metal | cuda
    fewshot: int = 2
    dtype: str | None = None  # the dtype the run asks (None: the problem's first)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"unknown prompt style {self.style!r}; known: {', '.join(STYLES)}")
        if self.backend not in BACKENDS[self.style]:
            raise ValueError(f"prompt style {self.style!r} writes kernels for {' or '.join(BACKENDS[self.style])}, "
                             f"not for the {self.backend} backend")


@dataclass(frozen=True)
class Shown:
    """A kernel shown to every model in the second round."""

    model: str
    attempt: int
    source: str
    summary: str  # the verdict in one line


def default_style(backend: str) -> str:
    return DEFAULT_STYLE[backend]


def system_message(style: str) -> str:
    return (f"You are an expert GPU kernel engineer. You replace PyTorch reference modules with custom "
            f"{LANGUAGE[style]} kernels that are correct to tight tolerances and as fast as the hardware "
            "allows. You answer with one complete Python module in a single ```python code block.")


def _examples_section(examples: list[Example]) -> str:
    if not examples:
        return ""
    parts = ["## Examples of accepted solutions", ""]
    for i, example in enumerate(examples, 1):
        what = f"{example.problem_id}" + (f" ({example.category})" if example.category else "")
        parts += [f"### Example {i}: {what}", "", "Reference:", "", "```python", example.reference.rstrip(), "```", "",
                  "Solution:", "", "```python", example.solution.rstrip(), "```", ""]
    return "\n".join(parts)


def best_so_far_section(shown: list[Shown]) -> str:
    if not shown:
        return ""
    parts = ["## The best kernels so far", "",
             ("Other models (and you) wrote these for this problem. Learn from them: write a kernel that is "
              "correct and faster than all of them."), ""]
    for i, entry in enumerate(shown, 1):
        parts += [f"### Kernel {i}, by {entry.model} (attempt {entry.attempt}): {entry.summary}", "",
                  "```python", entry.source.rstrip(), "```", ""]
    return "\n".join(parts)


def first_messages(problem, settings: PromptSettings, *, device: Any | None = None,
                   shown: list[Shown] | None = None) -> list[dict[str, str]]:
    """The system and user messages that open a chain for `problem`."""
    dtype = settings.dtype or problem.dtypes[0]
    what = f"problem {problem.id}" + (f", {problem.category}" if problem.category else "")
    task = [
        "# Task",
        "",
        (f"Write `ModelNew`, a faster drop-in replacement for the PyTorch module `Model` below, whose "
         f"computation runs in custom {LANGUAGE[settings.style]} kernels. Inputs and parameters are {dtype}."),
        "",
        f"## The reference ({what})",
        "",
        "```python",
        shown_source(problem.source).rstrip(),
        "```",
        "",
    ]
    sections = [
        "\n".join(task),
        kernel_contract(settings.style),
        device_facts(settings.backend, device),
        _examples_section(select_examples(problem, settings.style, settings.fewshot)),
        best_so_far_section(shown or []),
        answer_format(),
    ]
    user = "\n".join(s.rstrip() + "\n" for s in sections if s)
    return [{"role": "system", "content": system_message(settings.style)}, {"role": "user", "content": user}]


__all__ = [
    "STYLES",
    "PromptSettings",
    "Shown",
    "best_so_far_section",
    "default_style",
    "first_messages",
    "system_message",
]
