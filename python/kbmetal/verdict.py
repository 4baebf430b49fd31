"""What the evaluator concludes about one candidate: the records every other part reads.

A `Verdict` is plain data (dataclasses of numbers, strings, lists and dicts) so it crosses
process boundaries as JSON, lands in the store unchanged, and feeds refinement prompts. The
generator knows the evaluator only through these records.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# The stages a candidate goes through, in order. `Verdict.stage` is the last one reached: where
# it failed, or "complete" when it ran through all of them. "extract" is the generation layer's:
# a model's response held no usable solution, so nothing reached the evaluator.
STAGES = ("extract", "static", "import", "init", "correctness", "heldout", "timing", "complete")

# Why a candidate did not pass; `None` when it passed.
ERROR_KINDS = (
    "extract",  # a model's response held no usable code (kbmetal.generate)
    "syntax",  # the source does not parse
    "import",  # importing the module raised (not a kernel compile error)
    "compile",  # a kernel failed to compile (the compiler's log is in compile_log)
    "init",  # ModelNew(...) raised, or there is no ModelNew
    "runtime",  # forward raised (launch error, argument error, Python error)
    "timeout",  # a stage ran past its time limit
    "crash",  # the worker process died (segfault, abort, os._exit)
    "memory",  # the worker went over its memory limit
    "output",  # wrong structure, shape, dtype or device, or an output aliases an input
    "mismatch",  # values outside the calibrated tolerance
    "guard",  # a guard found cheating
    "problem",  # the problem itself could not run (not the candidate's fault)
    "harness",  # the harness, not the candidate: a bug (please report), or out of memory that other processes caused
)

SEVERITIES = ("fail", "flag", "info")


@dataclass
class GuardFinding:
    """One observation of a guard. `fail` fails the candidate, `flag` asks a human to look,
    `info` is shown but changes nothing."""

    guard: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")


@dataclass
class Comparison:
    """One output of one trial against the float64 reference, in assert_close's terms.

    The element test is |got - expected| <= atol + rtol * |expected|; `margin` is the worst
    element's error over its allowance, so a passing output has margin <= 1 (and 0.1 means it
    used a tenth of what it was allowed).
    """

    output: int
    passed: bool
    shape: list[int]
    numel: int
    mismatched: int = 0
    max_abs_error: float = 0.0
    max_abs_index: list[int] | None = None
    max_rel_error: float = 0.0
    max_rel_index: list[int] | None = None
    atol: float = 0.0
    rtol: float = 0.0
    margin: float = 0.0
    torch_max_abs_error: float | None = None  # PyTorch's own error at this dtype, same inputs
    reference: str = "float64"  # what `expected` was: "float64", or "native" (no float64 path)
    exact: bool = False  # integer/bool outputs: equality required
    examples: list[dict[str, Any]] = field(default_factory=list)  # first mismatching elements
    problem: str | None = None  # set when the output could not be compared at all
    note: str | None = None  # how the tolerance was set, when it is not the plain rule

    @property
    def mismatch_share(self) -> float:
        return self.mismatched / self.numel if self.numel else 0.0

    def describe(self) -> str:
        """assert_close's wording: where and by how much."""
        if self.problem:
            return f"output {self.output}: {self.problem}"
        if self.passed:
            return f"output {self.output}: within tolerance (margin {self.margin:.3g})"
        lines = [
            f"output {self.output}: mismatched elements: {self.mismatched} / {self.numel} "
            f"({100.0 * self.mismatch_share:.2g}%)"
        ]
        if self.exact:
            lines.append(f"  {self.output}: integer output, exact equality required")
        else:
            lines.append(
                f"  greatest absolute difference: {self.max_abs_error:.6g} at index "
                f"{tuple(self.max_abs_index or ())} (up to {self.atol:.3g} allowed)"
            )
            lines.append(
                f"  greatest relative difference: {self.max_rel_error:.6g} at index "
                f"{tuple(self.max_rel_index or ())} (up to {self.rtol:.3g} allowed)"
            )
        for ex in self.examples[:3]:
            lines.append(f"  at {tuple(ex['index'])}: got {ex['got']}, expected {ex['expected']}")
        return "\n".join(lines)


@dataclass
class TrialResult:
    """One forward call of the candidate on fresh (or refilled) inputs."""

    name: str
    sizes: str  # "main" or "heldout"
    distribution: str
    refill: str  # "fresh", "inplace" (same tensors, new values) or "inplace-quiet" (no version bump)
    passed: bool
    comparisons: list[Comparison] = field(default_factory=list)
    elapsed_ms: float | None = None
    launches: int | None = None
    error: str | None = None


@dataclass
class Timing:
    """A timing measurement of one subject (candidate, reference, a baseline)."""

    subject: str  # "candidate", "eager", "compile"
    method: str  # e.g. "cuda-events+device-sync", "cpu-clock (sim: not a performance measure)"
    is_performance: bool
    median_ms: float
    min_ms: float
    max_ms: float
    iqr_ms: float  # interquartile range: the spread
    runs: int
    warmup: int
    envelope_ms: float | None = None  # the parent's wall clock around the whole measurement
    profile: list[dict[str, Any]] = field(default_factory=list)  # per-kernel, when the backend gives it


@dataclass
class Verdict:
    problem_id: str
    backend: str
    device: str
    sizes: str  # the preset ("small", "default", ...) or "custom"
    dtype: str
    passed: bool = False
    stage: str = "static"
    reason: str = ""
    error_kind: str | None = None
    trials: list[TrialResult] = field(default_factory=list)
    guards: list[GuardFinding] = field(default_factory=list)
    timing: Timing | None = None
    baselines: dict[str, Timing] = field(default_factory=dict)
    speedup: float | None = None  # against eager; None where timings are not performance
    speedup_compile: float | None = None
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    margin: float | None = None
    peak_memory_bytes: int | None = None
    ops: dict[str, Any] = field(default_factory=dict)  # torch ops the candidate ran, by name
    compile_log: str | None = None
    log_tail: str = ""
    durations: dict[str, float] = field(default_factory=dict)  # seconds per stage
    sizes_detail: dict[str, Any] = field(default_factory=dict)  # the constants actually used
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """A finding asks a human to look (e.g. faster than the hardware allows)."""
        return any(g.severity == "flag" for g in self.guards)

    @property
    def failed_guards(self) -> list[GuardFinding]:
        return [g for g in self.guards if g.severity == "fail"]

    def summary(self) -> str:
        """One line: what a table cell or a log line shows."""
        if self.passed:
            text = "PASS"
            if self.margin is not None:
                text += f" (margin {self.margin:.2g})"
            if self.speedup is not None:
                text += f", {self.speedup:.2f}x eager"
        else:
            text = f"FAIL at {self.stage}: {self.reason}"
        if self.flagged:
            text += " [flagged for review]"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["flagged"] = self.flagged
        return _finite(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        data = dict(data)
        data.pop("flagged", None)
        data["trials"] = [
            TrialResult(**{**t, "comparisons": [Comparison(**c) for c in t.get("comparisons", [])]})
            for t in data.get("trials", [])
        ]
        data["guards"] = [GuardFinding(**g) for g in data.get("guards", [])]
        if data.get("timing"):
            data["timing"] = Timing(**data["timing"])
        data["baselines"] = {k: Timing(**v) for k, v in (data.get("baselines") or {}).items()}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """The compact JSON `bench eval --json` prints: the guaranteed keys first."""
        worst = self.worst_comparison()
        return _finite(
            {
                "passed": self.passed,
                "stage": self.stage,
                "reason": self.reason,
                "error_kind": self.error_kind,
                "max_abs_error": self.max_abs_error,
                "max_rel_error": self.max_rel_error,
                "margin": self.margin,
                "guards": [dataclasses.asdict(g) for g in self.guards],
                "flagged": self.flagged,
                "speedup": self.speedup,
                "speedup_compile": self.speedup_compile,
                "time_ms": self.timing.median_ms if self.timing else None,
                "timing_is_performance": self.timing.is_performance if self.timing else None,
                "problem": self.problem_id,
                "backend": self.backend,
                "device": self.device,
                "sizes": self.sizes,
                "dtype": self.dtype,
                "trials": [
                    {
                        "name": t.name,
                        "sizes": t.sizes,
                        "distribution": t.distribution,
                        "refill": t.refill,
                        "passed": t.passed,
                        "error": t.error,
                    }
                    for t in self.trials
                ],
                "mismatch": worst.describe() if worst is not None and not worst.passed else None,
                "peak_memory_bytes": self.peak_memory_bytes,
                "compile_log": self.compile_log,
                "log_tail": self.log_tail,
            }
        )

    def worst_comparison(self) -> Comparison | None:
        """The failing comparison to show first, else the one with the largest margin."""
        comparisons = [c for t in self.trials for c in t.comparisons]
        failing = [c for c in comparisons if not c.passed]
        if failing:
            return failing[0]
        return max(comparisons, key=lambda c: c.margin, default=None)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become strings, so every consumer can parse the record."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
