"""`bench eval PROBLEM SOLUTION`: judge one solution; exit 0 if it passed, 1 if not."""

from __future__ import annotations

import argparse
import json
import sys

from .common import (
    eval_options,
    read_solution,
    resolve_backend,
    size_overrides,
    user_errors,
)


def eval_command(args: argparse.Namespace) -> int:
    from ..evaluator.judge import Judge
    from ..evaluator.options import EvalOptions
    from ..problems import find_problem

    source = read_solution(args.solution)
    options = EvalOptions.from_kwargs(**eval_options(args))
    overrides = size_overrides(args)
    backend = resolve_backend(args.backend)
    with user_errors():
        problem = find_problem(args.problem)
        with Judge(options) as judge:
            verdict = judge.evaluate(
                problem, source, backend.name, sizes=args.sizes, overrides=overrides, dtype=args.dtype
            )
    if args.json:
        print(json.dumps(verdict.to_json()))
    else:
        print_verdict(verdict)
    return 0 if verdict.passed else 1


def print_verdict(verdict, file=None) -> None:
    file = file or sys.stdout
    out = []
    head = "PASS" if verdict.passed else f"FAIL at {verdict.stage} ({verdict.error_kind})"
    out.append(
        f"{verdict.problem_id} on {verdict.backend} ({verdict.device}), sizes {verdict.sizes}, {verdict.dtype}: {head}"
    )
    if not verdict.passed:
        out.append(f"  reason: {verdict.reason}")
    if verdict.margin is not None:
        out.append(
            f"  worst error: {verdict.max_abs_error:.3g} abs, {verdict.max_rel_error:.3g} rel; margin {verdict.margin:.3g} (<= 1 passes)"
        )
    for g in verdict.guards:
        if g.severity != "info" or not verdict.passed:
            out.append(f"  [{g.severity}] {g.guard}: {g.message}")
    if verdict.timing is not None:
        t = verdict.timing
        note = "" if t.is_performance else "  (sim: not a performance measure)"
        out.append(f"  time: {t.median_ms:.4g} ms median over {t.runs} runs (IQR {t.iqr_ms:.3g} ms){note}")
    if verdict.speedup is not None:
        line = f"  speedup: {verdict.speedup:.2f}x vs eager"
        if verdict.speedup_compile is not None:
            line += f", {verdict.speedup_compile:.2f}x vs torch.compile"
        out.append(line)
    if verdict.compile_log and not verdict.passed:
        out.append("  compiler log:")
        out += ["    " + line for line in verdict.compile_log.strip().splitlines()[-20:]]
    if verdict.log_tail and not verdict.passed:
        out.append("  log tail:")
        out += ["    " + line for line in verdict.log_tail.strip().splitlines()[-20:]]
    print("\n".join(out), file=file)
