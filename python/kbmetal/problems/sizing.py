"""Which module constants a problem runs with: presets, user overrides, and automatic small sizes.

Automatic small sizes ("auto-small") exist for files without a `small` preset, above all
upstream KernelBench, whose default sizes take seconds to minutes on a CPU. The rule:

1. Candidates are the integer literals >= 16 on the right of top-level assignments that define
   size constants (`dim = 393216`, the 224s in `input_shape = (batch_size, 3, 224, 224)`).
   Smaller literals are kernel sizes, strides, dims and group counts, which change what is
   computed rather than how much.
2. The reference is traced on fake tensors (kbmetal.problems.tracing), which costs milliseconds at
   any size. While it is over budget (FLOPs, elements of inputs + outputs + parameters, or op
   count), every candidate is halved at once (none below 8), which keeps the ratios a file
   relies on: channels per group, the width of a head, a mask buffer against its sequence.
3. When a step makes the file fail to build or run (a hard-coded Linear that no longer fits a
   feature map), the candidates are tried one at a time, largest first (with any others of the
   same value, for sizes that must stay equal); one that cannot be halved alone is left as it is
   from then on.
4. The result is written as ordinary overrides: every constant whose value changed.

A reference that cannot be traced on fake tensors (it reads values back, or its output shape
depends on data) is sized by the elements of its inputs and parameters alone. If the rule cannot
reach the budget (a network that hard-codes its channel counts), it stops at the smallest sizes
it found; `AutoSmall.note` says so.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ProblemError, describe_exception
from .program import size_constants

if TYPE_CHECKING:
    from .problem import Problem

AUTO_SMALL = "auto-small"
DEFAULT = "default"

FLOP_BUDGET = 1 << 26  # ~67 MFLOP: tens of milliseconds on one core
ELEMENT_BUDGET = 1 << 18  # 256K elements of inputs, outputs and parameters
OP_BUDGET = 2000  # aten ops per forward: recurrent references pay per op, not per element
SCALABLE_FROM = 16
SMALLEST = 8


def parse_size_overrides(items: list[str]) -> dict[str, object]:
    """`["batch_size=3", "shape=(3, 4)"]` (command-line `--size` values) -> a dict of overrides."""
    overrides: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"size override {item!r} is not NAME=VALUE (e.g. batch_size=8)")
        try:
            overrides[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise ValueError(
                f"size override {item!r}: {text.strip()!r} is not a Python literal "
                "(a number, or a tuple such as (3, 4))"
            ) from None
    return overrides


def resolve_sizes(
    problem: Problem, sizes: str | dict | None, overrides: dict | None
) -> tuple[str | None, dict[str, object]]:
    """(preset name or None, the constants to pin) for `Problem.instantiate`."""
    if sizes is None or sizes == DEFAULT:
        preset, pins = DEFAULT, {}
    elif isinstance(sizes, dict):
        preset, pins = None, dict(sizes)
    elif isinstance(sizes, str):
        if sizes in problem.presets:
            preset, pins = sizes, dict(problem.presets[sizes])
        elif sizes == AUTO_SMALL or (sizes == "small" and "small" not in problem.presets):
            preset, pins = AUTO_SMALL, dict(auto_small(problem).sizes)
        else:
            known = ", ".join([*problem.presets, DEFAULT, AUTO_SMALL])
            raise ProblemError(problem.path, f"has no size preset {sizes!r} (it has: {known})")
    else:
        raise TypeError(f"sizes must be a preset name, a dict or None, not {type(sizes).__name__}")
    if overrides:
        # The sizes are no longer the preset's: the instance reports None, and its `sizes`.
        pins.update(overrides)
        preset = None
    _check_names(problem, pins)
    return preset, pins


def _check_names(problem: Problem, pins: dict[str, object]) -> None:
    constants = problem.constants()
    unknown = sorted(set(pins) - set(constants))
    if unknown:
        raise ProblemError(
            problem.path,
            f"cannot override {', '.join(unknown)}: not a module-level size constant of this "
            f"file (it has: {', '.join(f'{k}={v!r}' for k, v in constants.items()) or 'none'})",
        )


@dataclass(frozen=True)
class AutoSmall:
    sizes: dict[str, object]  # the overrides: every constant whose value changed
    flops: int | None  # None when forward could not be traced on fake tensors
    elements: int
    within_budget: bool
    note: str = ""  # how it was measured, and why it stopped over budget
    frozen: tuple[str, ...] = field(default=())  # constants that could not be halved


@dataclass(frozen=True)
class _Cost:
    flops: int | None
    elements: int
    ops: int

    def over_budget(self) -> bool:
        return (self.flops or 0) > FLOP_BUDGET or self.elements > ELEMENT_BUDGET or self.ops > OP_BUDGET

    def describe(self) -> str:
        counted = f"{self.elements:.3g} elements, {self.ops} ops"
        return counted if self.flops is None else f"{self.flops:.3g} FLOPs, {counted}"


def _measures(problem: Problem):
    """Ways of costing `problem` with literal substitutions, cheapest and best informed first:
    trace everything on fake tensors; the same with a real Model (for constructors that read
    values back); then count input and parameter elements only (for forwards that do)."""
    from .instance import ProblemInstance
    from .tracing import OpLimitExceeded, footprint, trace

    program = problem._program

    def instance(substitutions: dict) -> ProblemInstance:
        module = program.execute(substitutions=substitutions)
        return ProblemInstance(problem, module, size_constants(program, module), AUTO_SMALL, "float32")

    def traced(real_model: bool):
        def measure(substitutions: dict) -> _Cost:
            try:
                t = trace(instance(substitutions), real_model=real_model, op_limit=OP_BUDGET)
            except OpLimitExceeded:
                # Over budget whatever else it does; stopping early keeps each step cheap for
                # recurrent references that run thousands of ops.
                return _Cost(None, 0, OP_BUDGET + 1)
            return _Cost(t.flops, t.elements, t.ops)

        return measure

    def counted(real_model: bool):
        def measure(substitutions: dict) -> _Cost:
            return _Cost(None, footprint(instance(substitutions), real_model=real_model), 0)

        return measure

    return [
        (traced(False), ""),
        (traced(True), "Model built for real: its constructor does not run on fake tensors"),
        (counted(False), "sized by input and parameter elements only: forward does not run on fake tensors"),
        (counted(True), "sized by input and parameter elements only: nothing runs on fake tensors"),
    ]


@functools.lru_cache(maxsize=256)
def auto_small(problem: Problem) -> AutoSmall:
    """Small sizes for `problem` by the rule in this module's docstring. Cached per problem."""
    program = problem._program
    constants = problem.constants()
    slots = [s for s in program.literal_slots(set(constants)) if s.value >= SCALABLE_FROM]

    failures = []
    for measure, note in _measures(problem):
        try:
            cost = measure({})
            break
        except Exception as exc:
            failures.append(describe_exception(exc, str(problem.path)))
    else:
        raise ProblemError(
            problem.path,
            f"cannot choose small sizes automatically: the file does not build at its own sizes "
            f"({failures[-1]}); give the sizes yourself (overrides such as batch_size=8)",
        )
    if note:
        note += f" ({failures[0]})"

    current = {(s.statement, s.ordinal): s.value for s in slots}
    substitutions: dict[tuple[int, int], int] = {}
    broken: set[tuple[int, int]] = set()

    def attempt(keys: list[tuple[int, int]]) -> bool:
        nonlocal substitutions, cost
        trial = {**substitutions, **{k: current[k] // 2 for k in keys}}
        try:
            trial_cost = measure(trial)
        except Exception:
            return False
        substitutions, cost = trial, trial_cost
        for k in keys:
            current[k] //= 2
        return True

    while cost.over_budget():
        candidates = [k for k, v in current.items() if k not in broken and v >= SCALABLE_FROM]
        if not candidates:
            break
        # All together first: ratios between sizes (channels per group, head width, a mask
        # buffer against the sequence it covers) are what a file relies on, and halving every
        # size at once keeps them.
        if attempt(candidates):
            continue
        # Something cannot shrink: find it, largest first, and go on without it.
        for key in sorted(candidates, key=lambda k: (-current[k], k)):
            if attempt([key]):
                break
            peers = [k for k in candidates if current[k] == current[key]]
            if len(peers) > 1 and attempt(peers):
                break
            broken.add(key)

    module = program.execute(substitutions=substitutions)
    sizes = {
        name: value
        for name, value in size_constants(program, module).items()
        if constants.get(name) != value
    }
    within = not cost.over_budget()
    if not within:
        note = (note + "; " if note else "") + (
            f"still over budget at the smallest sizes the rule found ({cost.describe()}): the file "
            "fixes the rest of its sizes"
        )
    names = {(s.statement, s.ordinal): s.names for s in slots}
    frozen = sorted({n for k in broken for n in names[k]})
    return AutoSmall(sizes, cost.flops, cost.elements, within, note, tuple(frozen))
