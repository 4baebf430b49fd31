"""The unit of work every executor runs: one candidate against one problem."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    key: int  # the candidate's id in the store
    problem_path: str
    source: str
    backend: str | None = None
    sizes: str | dict | None = None
    overrides: dict | None = None
    dtype: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # EvalOptions fields
    baselines: dict[str, dict] = field(default_factory=dict)  # cached Timing records by kind
    # candidates the judge that takes this task will likely get after it (None: unknown): no
    # more candidate processes than that are started ahead
    upcoming: int | None = None


@dataclass
class TaskResult:
    key: int
    verdict: dict[str, Any] | None = None  # Verdict.to_dict()
    problem_error: str | None = None  # the problem (not the candidate) could not run
    harness_error: str | None = None  # the evaluator failed: a bug to report


_JUDGE = None
_EARLY: list = []  # candidate processes started by judge_process_setup, for the first judge
_EARLY_STARTED = False
_JUDGES: int | None = None  # judge processes sharing this machine (its device), when known
_EXPECTED: int | None = None  # candidates this judge process will likely get, when known


def _judge(options: dict[str, Any]):
    """One Judge per process, kept between tasks, with the next workers pre-started."""
    global _JUDGE
    from ..evaluator.judge import Judge
    from ..evaluator.options import EvalOptions

    opts = EvalOptions.from_kwargs(**options)
    if _JUDGE is None or _JUDGE.options != opts:
        if _JUDGE is not None:
            _JUDGE.close()
        from ..evaluator.judge import _default_spare_limit

        _JUDGE = Judge(opts, prestart=True, spare_limit=_default_spare_limit(_JUDGES))
        _JUDGE.adopt(_EARLY)
        _EARLY.clear()
        import atexit

        atexit.register(_JUDGE.close)
    return _JUDGE


def _start_workers_early() -> None:
    """Start the first judge's candidate processes now, while this process is still to import
    torch: on a GPU machine each takes seconds to start. The best backend is known without torch
    (metalrt asks the driver), so they make its device ready too. Once per process."""
    global _EARLY_STARTED
    if _EARLY_STARTED:
        return
    _EARLY_STARTED = True
    from ..evaluator.backends import BackendError, best
    from ..evaluator.session import SessionConfig, WorkerSession

    try:
        backend = best()
    except BackendError:
        return  # the first task says what is missing
    from ..evaluator.judge import _default_spare_limit

    # as Judge(prestart=True) starts them on a first candidate with nothing measured yet
    depth = 1 if backend == "sim" else _default_spare_limit(_JUDGES)
    if _EXPECTED is not None:
        depth = min(depth, _EXPECTED)
    _EARLY.extend(WorkerSession(SessionConfig(), backend).start() for _ in range(depth))


def close_judge() -> None:
    global _JUDGE
    if _JUDGE is not None:
        _JUDGE.close()
        _JUDGE = None
    for session in _EARLY:
        session.discard()
    _EARLY.clear()


def run_task(task: Task) -> TaskResult:
    """Judge one task in this process. Never raises: every outcome is a TaskResult."""
    from ..evaluator.backends import BackendError
    from ..problems import ProblemError, load_problem
    from ..verdict import Timing

    try:
        problem = load_problem(task.problem_path)
        judge = _judge(task.options)
        verdict = judge.evaluate(
            problem,
            task.source,
            task.backend,
            sizes=task.sizes,
            overrides=task.overrides,
            dtype=task.dtype,
            baselines={k: Timing(**v) for k, v in task.baselines.items()},
            upcoming=task.upcoming,
        )
        return TaskResult(task.key, verdict=verdict.to_dict())
    except (ProblemError, BackendError) as exc:
        return TaskResult(task.key, problem_error=str(exc))
    except Exception as exc:  # the harness's own bug: recorded, never fatal to the run
        import traceback

        return TaskResult(task.key, harness_error="".join(traceback.format_exception(exc))[-4000:])


def judge_process_setup(threads: int | None, judges: int | None = None, expected: int | None = None) -> None:
    """Run at the start of every judge process: no secrets, no /proc exposure, fair CPU use.
    `judges`: judge processes on this machine; `expected`: candidates this one will likely get
    (None: unknown): they size what is started ahead."""
    global _JUDGES, _EXPECTED
    from ..evaluator import sandbox

    _JUDGES, _EXPECTED = judges, expected
    sandbox.die_with_parent(os.getppid())
    sandbox.protect_this_process()
    for name in [k for k, v in os.environ.items() if sandbox.is_secret(k, v)]:
        del os.environ[name]
    _start_workers_early()
    if threads:
        import torch

        torch.set_num_threads(threads)


class Executor:
    concurrency: int = 1

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, TaskResult]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
