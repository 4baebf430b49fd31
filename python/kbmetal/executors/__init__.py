"""Where judges run: in this process, in a local process pool (the default), or on a Ray cluster.

Every executor takes `Task`s and yields `(task, result)` pairs as they finish, in any order;
`result` is a plain dict (a verdict's record, or a problem error), so it crosses any process or
machine boundary. Only the caller writes the store.
"""

from .base import Executor, Task, TaskResult, run_task
from .local import LocalExecutor, SerialExecutor


def make_executor(kind: str = "local", concurrency: int | None = None, **kwargs) -> Executor:
    """ "local" (a process pool, concurrency = cores), "serial" (this process), or "ray"."""
    if kind == "local":
        return LocalExecutor(concurrency=concurrency, **kwargs)
    if kind == "serial":
        return SerialExecutor(**kwargs)
    if kind == "ray":
        from .ray import RayExecutor

        return RayExecutor(concurrency=concurrency, **kwargs)
    raise ValueError(f"unknown executor {kind!r}; known: local, serial, ray")


__all__ = ["Executor", "LocalExecutor", "SerialExecutor", "Task", "TaskResult", "make_executor", "run_task"]
