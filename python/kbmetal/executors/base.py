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


@dataclass
class TaskResult:
    key: int
    verdict: dict[str, Any] | None = None  # Verdict.to_dict()
    problem_error: str | None = None  # the problem (not the candidate) could not run
    harness_error: str | None = None  # the evaluator failed: a bug to report


_JUDGE = None


def _judge(options: dict[str, Any]):
    """One Judge per process, kept between tasks, with the next worker pre-started."""
    global _JUDGE
    from ..evaluator.judge import Judge
    from ..evaluator.options import EvalOptions

    opts = EvalOptions.from_kwargs(**options)
    if _JUDGE is None or _JUDGE.options != opts:
        if _JUDGE is not None:
            _JUDGE.close()
        _JUDGE = Judge(opts, prestart=True)
        import atexit

        atexit.register(_JUDGE.close)
    return _JUDGE


def close_judge() -> None:
    global _JUDGE
    if _JUDGE is not None:
        _JUDGE.close()
        _JUDGE = None


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
        )
        return TaskResult(task.key, verdict=verdict.to_dict())
    except (ProblemError, BackendError) as exc:
        return TaskResult(task.key, problem_error=str(exc))
    except Exception as exc:  # the harness's own bug: recorded, never fatal to the run
        import traceback

        return TaskResult(task.key, harness_error="".join(traceback.format_exception(exc))[-4000:])


def judge_process_setup(threads: int | None) -> None:
    """Run at the start of every judge process: no secrets, no /proc exposure, fair CPU use."""
    from ..evaluator import sandbox

    sandbox.die_with_parent(os.getppid())
    sandbox.protect_this_process()
    for name in [k for k, v in os.environ.items() if sandbox.is_secret(k, v)]:
        del os.environ[name]
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
