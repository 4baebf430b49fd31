"""Where generated candidates are judged: the evaluator's own unit of work (kbmetal.executors'
`Task` and `run_task`), submitted one at a time as responses arrive.

The evaluator's executors take a fixed list of tasks; a generation run learns its next candidate
only when a verdict comes back, so it keeps futures instead:
- "local": a pool of spawned judge processes (the evaluator's judge_process_setup: no secrets,
  protected /proc), one candidate each at a time;
- "serial": one judge in a thread of this process (candidates still run in worker processes).
A test can pass any callable Task -> TaskResult instead.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ..executors.base import (
    Task,
    TaskResult,
    close_judge,
    judge_process_setup,
    run_task,
)
from ..verdict import Verdict

JudgeFunction = Callable[[Task], TaskResult]


class JudgePool:
    concurrency = 1

    def submit(self, task: Task) -> Future:
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        pass


class ProcessJudges(JudgePool):
    def __init__(self, concurrency: int | None = None):
        from ..executors.local import default_concurrency

        self.concurrency = concurrency or default_concurrency()
        self._threads = max(1, default_concurrency() // self.concurrency)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.concurrency, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=judge_process_setup,
                                   initargs=(self._threads, self.concurrency, None))

    def submit(self, task: Task) -> Future:
        try:
            return self._pool.submit(run_task, task)
        except BrokenProcessPool:  # a judge process died (killed, out of memory): start afresh
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(run_task, task)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class ThreadJudges(JudgePool):
    """Judging in this process, one candidate at a time (the evaluator's Judge is not shared
    between threads)."""

    def __init__(self, judge: JudgeFunction | None = None):
        self._judge = judge or run_task
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kbmetal-judge")

    def submit(self, task: Task) -> Future:
        return self._pool.submit(self._judge, task)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        if self._judge is run_task:
            close_judge()  # its pre-started worker process


def make_judges(kind: str | JudgeFunction = "local", concurrency: int | None = None) -> JudgePool:
    if callable(kind):
        return ThreadJudges(kind)
    if kind == "local":
        return ProcessJudges(concurrency)
    if kind == "serial":
        return ThreadJudges()
    raise ValueError(f"unknown judging executor {kind!r}; known: local, serial")


@dataclass(frozen=True)
class JudgeSettings:
    """How every candidate of a run is judged (fixed for the run: part of its fingerprint)."""

    backend: str
    device: str
    is_performance: bool
    sizes: str | dict | None
    overrides: dict | None
    dtype: str | None
    options: dict[str, Any]  # EvalOptions fields

    def task(self, candidate_id: int, problem, source: str, baselines: dict[str, dict] | None = None) -> Task:
        return Task(key=candidate_id, problem_path=str(problem.path), source=source, backend=self.backend,
                    sizes=self.sizes, overrides=self.overrides, dtype=self.dtype, options=self.options,
                    baselines=baselines or {})

    def cached_baselines(self, store, problem) -> dict[str, dict]:
        """Eager/compile timings measured before for exactly these sizes, dtype, device and torch."""
        if not self.is_performance:
            return {}
        import torch

        from ..problems import ProblemError

        try:
            instance = problem.instantiate(self.sizes, overrides=self.overrides, dtype=self.dtype)
        except ProblemError:
            return {}  # the judge reports it
        sizes = {k: list(v) if isinstance(v, tuple) else v for k, v in instance.sizes.items()}
        found = store.baselines(problem.id, sizes, instance.dtype, self.device, torch.__version__)
        return {kind: vars(timing) for kind, timing in found.items()}

    def verdict(self, problem_id: str, result: TaskResult) -> Verdict:
        """A Verdict for every outcome, including the ones that are not the candidate's fault."""
        if result.verdict is not None:
            return Verdict.from_dict(result.verdict)
        kind = "problem" if result.problem_error else "harness"
        reason = result.problem_error or f"the evaluator failed (please report): {result.harness_error}"
        return Verdict(problem_id=problem_id, backend=self.backend, device=self.device, sizes=str(self.sizes),
                       dtype=self.dtype or "", passed=False, stage="static", reason=reason.splitlines()[0][:500],
                       error_kind=kind, log_tail=result.harness_error or "")

    def no_code(self, problem_id: str, reason: str) -> Verdict:
        """The verdict on a response with no usable code."""
        return Verdict(problem_id=problem_id, backend=self.backend, device=self.device, sizes=str(self.sizes),
                       dtype=self.dtype or "", passed=False, stage="extract", error_kind="extract",
                       reason=f"no solution in the response: {reason}")
