"""Judges on a Ray cluster: one Ray task per candidate, each on a node with the backend.

Ray is imported only here, and only when this executor is chosen (`pip install kbmetal[cluster]`).
Each Ray worker process keeps its Judge between tasks, as the local pool does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .base import Executor, Task, TaskResult, judge_process_setup, run_task


class RayExecutor(Executor):
    def __init__(self, concurrency: int | None = None, address: str | None = None, num_gpus: float = 0.0):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install 'kbmetal[cluster]'") from None
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        self.concurrency = concurrency or int(ray.cluster_resources().get("CPU", 1))

        def judge(task: Task) -> TaskResult:
            judge_process_setup(None)
            return run_task(task)

        self._remote = ray.remote(num_cpus=1, num_gpus=num_gpus)(judge)

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, TaskResult]]:
        ray = self._ray
        pending = iter(tasks)
        running = {}
        while True:
            while len(running) < self.concurrency:
                task = next(pending, None)
                if task is None:
                    break
                running[self._remote.remote(task)] = task
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:
                    result = TaskResult(
                        task.key, harness_error=f"the Ray task failed: {type(exc).__name__}: {exc}"
                    )
                yield task, result

    def close(self) -> None:
        pass
