"""Problem lint: references that reward cheating, and why.

A candidate is judged by comparing its output with the reference's. If the reference's output is
mostly zero, a kernel that writes zeros passes; if it is nearly constant, or nearly the same
whatever the inputs, a kernel that writes one remembered answer passes; if it ignores an input, a
kernel may skip reading it. Each check below runs the reference on the CPU at small sizes:

| check              | flagged when                                                                   |
| ------------------ | ------------------------------------------------------------------------------ |
| error              | the reference does not build or run (the exception's first line)               |
| non-finite         | an output holds NaN or infinity on the problem's own inputs                    |
| near-zero          | >= 90% of an output's elements have magnitude <= 1e-4                          |
| constant           | >= 90% of an output's elements lie within 1e-3 * rms of the output's median    |
| same-across-seeds  | redrawing every input (two other seeds) leaves >= 90% of every output unchanged |
| ignores-input      | redrawing one input leaves >= 90% of every output unchanged                    |
| nondeterministic   | two calls with the same model and inputs differ by more than 1e-6 * rms       |
| batchnorm-training | a BatchNorm runs in training mode: it normalises with the batch's statistics   |

"Unchanged" means within 1e-3 * rms(output) + 1e-7 (elementwise): a float32 kernel's own error
is far below that, so a remembered answer within it would pass any honest tolerance.
"""

from __future__ import annotations

import json as jsonlib
import sys
from dataclasses import asdict, dataclass, field

import torch

from . import ids
from .catalog import problem_files
from .errors import ProblemError, describe_exception
from .problem import Problem, load_problem

MOSTLY = 0.9
NEAR_ZERO = 1e-4
SAME_RTOL = 1e-3
SAME_ATOL = 1e-7
DETERMINISM_TOL = 1e-6
MODEL_SEED = 0
INPUT_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Finding:
    check: str
    message: str


@dataclass
class LintReport:
    id: str
    name: str
    path: str
    sizes: str | None  # the preset (or "auto-small") the checks ran at
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def errored(self) -> bool:
        return any(f.check == "error" for f in self.findings)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _outputs(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _outputs(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _outputs(item)]
    return []


def _run(model: torch.nn.Module, inputs: list) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*inputs)
    return [t.detach().to("cpu", torch.float64) for t in _outputs(out)]


def _rms(y: torch.Tensor) -> float:
    finite = y[torch.isfinite(y)]
    return float(finite.pow(2).mean().sqrt()) if finite.numel() else 0.0


def _unchanged_share(before: torch.Tensor, after: torch.Tensor) -> float:
    """Share of elements that did not move, judged against the output's own scale."""
    if before.shape != after.shape:
        return 0.0
    if before.numel() == 0:
        return 1.0
    tolerance = SAME_RTOL * _rms(before) + SAME_ATOL
    same = ((before - after).abs() <= tolerance) | (before == after)  # == also matches infinities
    return float(same.double().mean())


def _outputs_unchanged(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    """The smallest unchanged share over all outputs: an input matters if any output moves."""
    if len(before) != len(after):
        return 0.0
    return min((_unchanged_share(b, a) for b, a in zip(before, after)), default=1.0)


def _name(index: int, count: int) -> str:
    return "the output" if count == 1 else f"output {index}"


def _value_checks(outputs: list[torch.Tensor]) -> list[Finding]:
    findings = []
    for k, y in enumerate(outputs):
        what = _name(k, len(outputs))
        n = y.numel()
        if n == 0:
            findings.append(Finding("constant", f"{what} is empty"))
            continue
        finite = torch.isfinite(y)
        if not bool(finite.all()):
            share = 1 - float(finite.double().mean())
            findings.append(
                Finding("non-finite", f"{share:.1%} of {what}'s {n} elements are NaN or infinite")
            )
            continue
        small = float((y.abs() <= NEAR_ZERO).double().mean())
        if small >= MOSTLY:
            findings.append(
                Finding(
                    "near-zero",
                    f"{small:.1%} of {what}'s {n} elements are within {NEAR_ZERO:g} of zero "
                    f"(largest magnitude {float(y.abs().max()):.3g}): a kernel that writes zeros "
                    "would pass",
                )
            )
            continue
        if n > 1:
            median = float(y.flatten().median())
            spread = SAME_RTOL * _rms(y)
            share = float(((y - median).abs() <= spread).double().mean())
            if share >= MOSTLY:
                findings.append(
                    Finding(
                        "constant",
                        f"{share:.1%} of {what}'s {n} elements equal {median:.6g} to within "
                        f"{spread:.3g}: a kernel that writes that one value would pass",
                    )
                )
    return findings


def _module_checks(model: torch.nn.Module) -> list[Finding]:
    training = [
        name or "(the model)"
        for name, sub in model.named_modules()
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) and sub.training
    ]
    if not training:
        return []
    listed = ", ".join(training[:4]) + (f" and {len(training) - 4} more" if len(training) > 4 else "")
    return [
        Finding(
            "batchnorm-training",
            f"{len(training)} BatchNorm module(s) in training mode ({listed}): they normalise with "
            "the batch's own statistics and update their running ones on every call; put them in "
            "eval mode with non-trivial running statistics",
        )
    ]


def _dropouts(model: torch.nn.Module) -> list[str]:
    return [
        f"{type(sub).__name__} {name}"
        for name, sub in model.named_modules()
        if isinstance(sub, torch.nn.modules.dropout._DropoutNd) and sub.training and sub.p > 0
    ]


def _perturbed(value: torch.Tensor, other: torch.Tensor) -> torch.Tensor | None:
    """`other` if it differs from `value`; else a scaled copy for floating tensors; else None."""
    if other.shape == value.shape and not torch.equal(other, value):
        return other
    if value.is_floating_point():
        gen = torch.Generator().manual_seed(12345)
        factor = 1.0 + 0.5 * (2 * torch.rand(value.shape, generator=gen) - 1)
        return value * factor.to(value.dtype)
    return None


def lint_problem(
    problem: Problem, sizes: str | dict | None = "small", *, overrides: dict | None = None
) -> LintReport:
    """Run every check on `problem` at `sizes` ("small" falls back to "auto-small")."""
    report = LintReport(problem.id, problem.name, str(problem.path), None)
    filename = str(problem.path)
    try:
        instance = problem.instantiate(sizes, overrides=overrides)
        report.sizes = instance.preset
        model = instance.make_model(MODEL_SEED)
        inputs = instance.make_inputs(INPUT_SEEDS[0])
        baseline = _run(model, inputs)
    except ProblemError as exc:
        report.findings.append(Finding("error", exc.cause))
        return report
    except Exception as exc:
        report.findings.append(Finding("error", f"forward raised {describe_exception(exc, filename)}"))
        return report
    if not baseline:
        report.findings.append(Finding("error", "forward returned no tensor"))
        return report

    report.findings += _module_checks(model)
    try:
        report.findings += _checks_that_rerun(instance, model, inputs, baseline)
    except Exception as exc:
        report.findings.append(
            Finding("error", f"forward raised {describe_exception(exc, filename)} on other inputs")
        )
    return report


def _checks_that_rerun(instance, model, inputs, baseline) -> list[Finding]:
    findings = []
    again = _run(model, instance.make_inputs(INPUT_SEEDS[0]))
    moved = [
        float((b - a).abs().max()) if b.shape == a.shape else float("inf")
        for b, a in zip(baseline, again)
        if b.shape != a.shape
        or not torch.allclose(b, a, rtol=0, atol=DETERMINISM_TOL * _rms(b), equal_nan=True)
    ]
    if moved or len(again) != len(baseline):
        why = ", ".join(_dropouts(model)) or "randomness or state that changes across calls"
        findings.append(
            Finding(
                "nondeterministic",
                f"two calls with the same model and inputs differ (by up to {max(moved or [0]):.3g}): {why}",
            )
        )
    findings += _value_checks(baseline)

    redrawn = [instance.make_inputs(seed) for seed in INPUT_SEEDS[1:]]
    same_share = min(_outputs_unchanged(baseline, _run(model, x)) for x in redrawn)
    if same_share >= MOSTLY:
        findings.append(
            Finding(
                "same-across-seeds",
                f"redrawing every input leaves {same_share:.1%} of the output unchanged: a kernel "
                "that returns one remembered answer would pass",
            )
        )
    elif len(inputs) > 1:  # with one input, redrawing every input already tested it
        others = instance.make_inputs(INPUT_SEEDS[1])
        for index, value in enumerate(instance.make_inputs(INPUT_SEEDS[0])):
            if not isinstance(value, torch.Tensor):
                continue
            other = _perturbed(value, others[index])
            if other is None:
                continue  # an integer input get_inputs() always gives the same: nothing to vary
            # fresh inputs for every run: a forward that works in place must not leak into the next
            trial = instance.make_inputs(INPUT_SEEDS[0])
            trial[index] = other
            share = _outputs_unchanged(baseline, _run(model, trial))
            if share >= MOSTLY:
                findings.append(
                    Finding(
                        "ignores-input",
                        f"input {index} {tuple(value.shape)}: redrawing it leaves {share:.1%} of "
                        "the output unchanged; the reference (nearly) ignores it",
                    )
                )
    return findings


def lint_main(
    paths: list[str], sizes: str | None = "small", json: bool = False, *, overrides: dict | None = None
) -> int:
    """Lint problem files and folders; print a table (or JSON). 0: all clean, 1: something
    flagged, 2: a path that is not a problem file or folder."""
    try:
        files = [f for p in paths for f in problem_files(p)]
    except ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reports = []
    for path in _progress(files, quiet=json):
        try:
            problem = load_problem(path)
        except ProblemError as exc:
            report = LintReport(ids.problem_id(path), path.stem, str(path), None)
            report.findings.append(Finding("error", exc.cause))
        else:
            report = lint_problem(problem, sizes, overrides=overrides)
        reports.append(report)
    if json:
        print(jsonlib.dumps([r.to_dict() for r in reports], indent=1))
    else:
        _print_table(reports)
    return 0 if all(r.ok for r in reports) else 1


def _progress(files: list, quiet: bool):
    if quiet or not sys.stderr.isatty():
        yield from files
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("lint", total=len(files))
        for f in files:
            yield f
            progress.advance(task)


def _print_table(reports: list[LintReport]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="problem lint")
    for column in ("id", "name", "sizes", "result", "why"):
        table.add_column(column, overflow="fold")
    for r in reports:
        result = "ok" if r.ok else ("[red]error[/]" if r.errored else "[yellow]flagged[/]")
        why = "\n".join(f"{f.check}: {f.message}" for f in r.findings)
        table.add_row(r.id, r.name, r.sizes or "", result, why, end_section=not r.ok)
    console = Console()
    console.print(table)
    flagged = sum(not r.ok for r in reports)
    console.print(f"{len(reports)} problems, {flagged} flagged")


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .sizing import parse_size_overrides

    parser = argparse.ArgumentParser(prog="python -m kbmetal.problems.lint", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="problem files, folders, or levels (1, L1, level1)")
    parser.add_argument("--sizes", default="small", help="a preset, default, or auto-small (default: small)")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=VALUE", help="override a constant")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        overrides = parse_size_overrides(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    return lint_main(args.paths, args.sizes, args.json, overrides=overrides or None)


if __name__ == "__main__":
    sys.exit(main())
