"""`bench run --solutions DIR` and the main job: judge a folder of solutions into a stored run.

A run is planned once (every candidate stored in one transaction), then judged candidate by
candidate, each verdict committed as it arrives. Killed at any point, the same command finds the
unfinished run with the same fingerprint (same solutions, problems, backend, sizes and options)
and judges only what has no verdict yet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import sys
import time
from typing import Any

from .cli_errors import UsageError
from .common import (
    eval_options,
    resolve_backend,
    size_overrides,
    store_path,
    user_errors,
)

RUNS_DIR = pathlib.Path("runs")


def _fingerprint(backend: str, sizes: Any, overrides: Any, dtype: Any, options: dict, plan: list) -> str:
    payload = {
        "backend": backend,
        "sizes": sizes,
        "overrides": overrides,
        "dtype": dtype,
        "options": options,
        "plan": [
            (
                c.problem.id,
                hashlib.sha256(c.problem.source.encode()).hexdigest(),
                hashlib.sha256(c.source.encode()).hexdigest(),
            )
            for c in plan
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _problems(problems_dir: str | None):
    from ..problems import load_problems, problems_root

    with user_errors():
        if problems_dir:
            return load_problems(problems_dir)
        root = problems_root()
        if not root.is_dir():
            raise UsageError(f"{root}: no bundled problems found; give --problems-dir")
        return load_problems(None)


def _result_verdict(problem_id: str, result, backend, sizes: str, dtype: str | None):
    """A Verdict for every outcome, including the ones that are not the candidate's fault."""
    from ..verdict import Verdict

    if result.verdict is not None:
        return Verdict.from_dict(result.verdict)
    kind = "problem" if result.problem_error else "harness"
    reason = result.problem_error or f"the evaluator failed (please report): {result.harness_error}"
    return Verdict(
        problem_id=problem_id,
        backend=backend.name,
        device=backend.device_name,
        sizes=str(sizes),
        dtype=dtype or "",
        passed=False,
        stage="static",
        reason=reason.splitlines()[0][:500],
        error_kind=kind,
        log_tail=result.harness_error or "",
    )


def _cached_baselines(store, problem, backend, sizes, overrides, dtype) -> dict[str, dict]:
    """Eager/compile timings measured before for exactly these sizes, dtype, device and torch."""
    import torch

    from ..problems import ProblemError

    if problem is None or not backend.is_performance:
        return {}
    try:
        instance = problem.instantiate(sizes, overrides=overrides, dtype=dtype)
    except ProblemError:
        return {}  # the judge reports it
    sizes_detail = {k: list(v) if isinstance(v, tuple) else v for k, v in instance.sizes.items()}
    found = store.baselines(problem.id, sizes_detail, instance.dtype, backend.device_name, torch.__version__)
    return {kind: timing.__dict__ for kind, timing in found.items()}


def judge_run(
    *,
    solutions: list,
    backend,
    sizes: str | None,
    overrides: dict | None,
    dtype: str | None,
    options: dict[str, Any],
    store_file: pathlib.Path,
    run_id: str | None,
    fresh: bool,
    executor_kind: str,
    concurrency: int | None,
    out: str | None,
    command: str,
) -> int:
    """Plan (or resume) a run, judge what is pending with a progress bar, print the table, write
    the report. 0 when every candidate passed, 1 otherwise."""
    import torch
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .. import report
    from ..evaluator import sandbox
    from ..executors import Task, make_executor
    from ..store import PlannedCandidate, Store

    sandbox.protect_this_process()
    console = Console(stderr=True)
    plan = []
    for solution in solutions:
        with user_errors():
            plan.append(PlannedCandidate(solution.problem, solution.source(), origin=str(solution.path)))
    sizes = sizes or backend.default_sizes
    fingerprint = _fingerprint(backend.name, sizes, overrides, dtype, options, plan)
    with user_errors():
        store = Store(store_file)
    with store:
        with user_errors():
            if run_id and any(r["id"] == run_id for r in store.runs()):
                resumed = True
                if store.run(run_id)["fingerprint"] != fingerprint:
                    raise UsageError(
                        f"run {run_id!r} exists with other solutions or settings; pick another --run-id"
                    )
            else:
                existing = None if fresh or run_id else store.find_resumable(fingerprint)
                resumed = existing is not None
                run_id = existing or store.create_run(
                    plan,
                    run_id=run_id,
                    fingerprint=fingerprint,
                    backend=backend.name,
                    device=backend.device_name,
                    sizes=sizes if isinstance(sizes, str) else json.dumps(sizes),
                    dtype=dtype,
                    options={**options, "overrides": overrides},
                    command=command,
                )
        pending = store.pending(run_id)
        total = len(store.candidates(run_id))
        if resumed:
            console.print(f"resuming run {run_id}: {total - len(pending)} of {total} already judged")
        else:
            console.print(
                f"run {run_id}: {total} candidates on {backend.name} ({backend.device_name}), sizes {sizes}"
            )
        problems = {s.problem.id: s.problem for s in solutions}
        tasks = [
            Task(
                key=c.id,
                problem_path=c.problem_path,
                source=c.source,
                backend=backend.name,
                sizes=sizes,
                overrides=overrides,
                dtype=dtype,
                options=options,
                baselines=_cached_baselines(
                    store, problems.get(c.problem_id), backend, sizes, overrides, dtype
                ),
            )
            for c in pending
        ]
        by_key = {c.id: c for c in pending}
        started = time.monotonic()
        if tasks:
            if concurrency is None and backend.is_performance:
                # one device: correctness of two candidates overlaps while one is timed (timing is
                # serialised per device); more would only fight over device memory
                concurrency = 2
            executor = make_executor(executor_kind, concurrency)
            try:
                with Progress(
                    TextColumn("[progress.description]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                    transient=False,
                ) as progress:
                    bar = progress.add_task("judging", total=total, completed=total - len(pending))
                    for task, result in executor.run(tasks):
                        candidate = by_key[task.key]
                        verdict = _result_verdict(candidate.problem_id, result, backend, sizes, dtype)
                        store.record_verdict(task.key, verdict, torch_version=torch.__version__)
                        mark = "[green]pass[/]" if verdict.passed else "[red]fail[/]"
                        progress.update(bar, advance=1, description=f"{candidate.problem_id} {mark}")
            except KeyboardInterrupt:
                executor.close()
                console.print(f"interrupted: rerun the same command to resume run {run_id}")
                raise
            executor.close()
        store.finish_run(run_id)
        elapsed = time.monotonic() - started
        report.print_run(store, run_id, console=Console())
        folder = pathlib.Path(out) if out else store_file.parent / run_id
        written = report.write_reports(store, run_id, folder)
        console.print(
            f"judged in {elapsed:.0f} s; store: {store_file}; report: {written['html']} and {written['markdown']}"
        )
        rows = store.verdicts(run_id)
    return 0 if rows and all(r["passed"] for r in rows) else 1


def run_command(args: argparse.Namespace) -> int:
    from .. import solutions as sol

    backend = resolve_backend(args.backend)
    problems = _problems(args.problems_dir)
    with user_errors():
        chosen = sol.select(problems, args.level, args.problems)
        if not chosen:
            raise UsageError("no problem matches --level/--problems")
        matched, unmatched = sol.match(pathlib.Path(args.solutions), problems)
    chosen_ids = {p.id for p in chosen}
    matched = [s for s in matched if s.problem.id in chosen_ids]
    if unmatched:
        names = ", ".join(p.name for p in unmatched[:5])
        print(
            f"note: {len(unmatched)} file(s) in {args.solutions} match no problem: {names}", file=sys.stderr
        )
    if not matched:
        raise UsageError(
            f"{args.solutions}: no solution file matches a selected problem (files are named L1-019.py or 019_relu.py)"
        )
    return judge_run(
        solutions=matched,
        backend=backend,
        sizes=args.sizes,
        overrides=size_overrides(args),
        dtype=args.dtype,
        options=eval_options(args),
        store_file=store_path(args),
        run_id=args.run_id,
        fresh=args.fresh,
        executor_kind=args.executor,
        concurrency=args.concurrency,
        out=args.out,
        command=" ".join(["python -m kbmetal.bench", *sys.argv[1:]]),
    )


def main_job(args: argparse.Namespace) -> int:
    """The bundled solutions on the best backend present, at the backend's default sizes."""
    from .. import solutions as sol

    backend = resolve_backend(None)
    folder = sol.bundled_dir(backend.name)
    problems = _problems(None)
    with user_errors():
        if not folder.is_dir():
            raise UsageError(
                f"no bundled solutions for the {backend.name} backend (looked in {folder}); "
                "give a folder with `run --solutions DIR`"
            )
        matched, _ = sol.match(folder, problems)
    if not matched:
        raise UsageError(f"{folder}: no solution file matches a bundled problem")
    print(
        f"kbmetal main job: {len(matched)} bundled solutions on {backend.name} ({backend.device_name}), "
        f"sizes {backend.default_sizes}",
        file=sys.stderr,
    )
    return judge_run(
        solutions=matched,
        backend=backend,
        sizes=None,
        overrides=None,
        dtype=None,
        options={},
        store_file=store_path(args),
        run_id=None,
        fresh=False,
        executor_kind="local",
        concurrency=None,
        out=None,
        command="python -m kbmetal.bench",
    )
