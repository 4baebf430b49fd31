"""The end-of-run summary: per model and for the swarm, fast_p, geometric-mean speedup, tokens and
cost; and the supervisor's choice per problem.

Per model, a problem counts as that model's best candidate on it (metrics.best_per_problem); for
the swarm, as the supervisor's choice. Every problem of the run is in every denominator, so a
model that never answered a problem scores 0 there, as KernelBench counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import metrics
from ..store import Store
from . import records
from .accounting import Totals, combine, totals_by_model

PS = (0.0, 1.0, 2.0)
SWARM = "swarm (supervisor)"


@dataclass
class Row:
    name: str
    problems: int
    correct: int
    fast: dict[float, float | None]
    geomean: float | None
    geomean_compile: float | None
    totals: Totals = field(default_factory=Totals)


def _row(name: str, results: list[metrics.ProblemResult], n: int, totals: Totals) -> Row:
    best = metrics.best_per_problem(results)
    return Row(
        name=name,
        problems=n,
        correct=sum(r.correct for r in best),
        fast={p: metrics.fast_p(results, p, n=n) if n else None for p in PS},
        geomean=metrics.geometric_mean_speedup(results),
        geomean_compile=metrics.geometric_mean_speedup(results, "compile"),
        totals=totals,
    )


def summarize(store: Store, run_id: str, problem_ids: list[str], models: list[str]) -> list[Row]:
    verdicts = [r for r in store.verdicts(run_id) if r["problem_id"] in set(problem_ids)]
    spent = totals_by_model(records.request_rows(store, run_id))
    n = len(problem_ids)
    rows = []
    for model in models:
        mine = [r for r in verdicts if r["model"] == model]
        rows.append(_row(model, metrics.results_from_rows(mine), n, spent.get(model, Totals())))
    by_candidate = {r["candidate_id"]: r for r in verdicts}
    chosen = [by_candidate[s["candidate_id"]] for s in records.selections(store, run_id).values()
              if s["candidate_id"] in by_candidate]
    rows.append(_row(SWARM, metrics.results_from_rows(chosen), n, combine(spent.get(m, Totals()) for m in models)))
    return rows


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def table_cells(row: Row, performance: bool) -> list[str]:
    cells = [row.name, f"{row.correct}/{row.problems}"]
    cells += [_fmt(row.fast[p], ".2f") for p in PS if performance or p == 0.0]
    if performance:
        cells += [_fmt(row.geomean, ".2f", "x"), _fmt(row.geomean_compile, ".2f", "x")]
    t = row.totals
    cells += [str(t.requests) + (f" ({t.cached} cached)" if t.cached else ""),
              f"{t.usage.input_tokens:,} / {t.usage.output_tokens:,}",
              "-" if t.cost is None else f"${t.cost:.2f}"]
    return cells


def headers(performance: bool) -> list[str]:
    names = ["model", "correct"] + [f"fast_{p:g}" for p in PS if performance or p == 0.0]
    if performance:
        names += ["geomean vs eager", "geomean vs compile"]
    return names + ["requests", "tokens in / out", "cost"]


def to_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "model": r.name, "problems": r.problems, "correct": r.correct,
            "fast_p": {f"{p:g}": v for p, v in r.fast.items()},
            "geomean_speedup": r.geomean, "geomean_speedup_compile": r.geomean_compile,
            "requests": r.totals.requests, "failed_requests": r.totals.failed, "cached_requests": r.totals.cached,
            "input_tokens": r.totals.usage.input_tokens, "output_tokens": r.totals.usage.output_tokens,
            "reasoning_tokens": r.totals.usage.reasoning_tokens, "cost_usd": r.totals.cost,
        }
        for r in rows
    ]


def print_summary(console, store: Store, run_id: str, rows: list[Row], performance: bool) -> None:
    from rich.table import Table

    table = Table(title=f"generation run {run_id}: per model and for the swarm")
    for name in headers(performance):
        table.add_column(name, no_wrap=name != "model")
    for row in rows:
        table.add_row(*table_cells(row, performance), style="bold" if row.name == SWARM else None)
    console.print(table)
    choices = Table(title="the supervisor's choice per problem")
    choices.add_column("problem", no_wrap=True)
    choices.add_column("chosen", no_wrap=True)
    choices.add_column("why", ratio=1)
    for problem_id, selection in records.selections(store, run_id).items():
        who = f"{selection['model']} #{selection['attempt']}" if selection["candidate_id"] else "none"
        reasons = selection["reasons"]
        choices.add_row(problem_id, who, reasons.get("summary", "") + ("" if reasons.get("complete", True) else
                                                                       " (unfinished: resume the run)"))
    console.print(choices)
    if not performance:
        console.print("[dim]timings on this backend are not performance: fast_p only for p = 0, no speedups[/dim]")
