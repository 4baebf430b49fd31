"""Judges on this machine: a pool of spawned processes, or this process alone."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from .base import Executor, Task, TaskResult, close_judge, judge_process_setup, run_task


def default_concurrency() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


class LocalExecutor(Executor):
    """`concurrency` judge processes (default: one per core), each judging one candidate at a
    time in a worker of its own. Tasks are submitted a few at a time, so an interrupted run has
    little in flight."""

    def __init__(self, concurrency: int | None = None, threads_per_judge: int | None = None):
        self.concurrency = concurrency or default_concurrency()
        threads = threads_per_judge or max(1, default_concurrency() // self.concurrency)
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None

    def _start(self, expected: int | None) -> ProcessPoolExecutor:
        """The judges, started with the first tasks: knowing how many candidates each will get,
        they start no more candidate processes ahead than those will use."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.concurrency,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=judge_process_setup,
                initargs=(self.threads, self.concurrency, expected),
            )
        return self._pool

    def _share(self, left: int) -> int:
        """Candidates a judge will likely get out of `left` still to hand out."""
        return -(-left // self.concurrency)

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, TaskResult]]:
        tasks = list(tasks)
        pool = self._start(self._share(len(tasks)) if tasks else None)
        pending = iter(tasks)
        left = len(tasks)
        running = {}
        while True:
            while len(running) < self.concurrency:
                task = next(pending, None)
                if task is None:
                    break
                left -= 1
                task = dataclasses.replace(task, upcoming=self._share(left))
                running[pool.submit(run_task, task)] = task
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # the judge process itself died
                    result = TaskResult(
                        task.key, harness_error=f"the judge process failed: {type(exc).__name__}: {exc}"
                    )
                yield task, result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class SerialExecutor(Executor):
    """Judge in this process, one candidate after another (candidates still run in workers)."""

    concurrency = 1

    def __init__(self, **_: object):
        pass

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, TaskResult]]:
        for task in tasks:
            yield task, run_task(task)

    def close(self) -> None:
        close_judge()
