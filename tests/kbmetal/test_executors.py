"""Executors run tasks anywhere and always return a result per task, whatever the candidate did."""

import pytest
from kbm_helpers import problem_path
from kbm_kernels import candidate


def _tasks():
    from kbmetal.executors import Task

    good = candidate("L1-001")
    return [
        Task(
            key=1,
            problem_path=str(problem_path("L1-001")),
            source=good,
            backend="sim",
            options={"timing": False},
        ),
        Task(
            key=2,
            problem_path=str(problem_path("L1-001")),
            source="import os\nos._exit(9)\n",
            backend="sim",
            options={"timing": False},
        ),
        Task(key=3, problem_path="/no/such/problem.py", source=good, backend="sim"),
    ]


def _check(results):
    assert sorted(results) == [1, 2, 3]
    assert results[1].verdict["passed"] is True
    assert results[2].verdict["passed"] is False and results[2].verdict["error_kind"] == "crash"
    assert results[3].verdict is None and "no such problem file" in results[3].problem_error


def test_serial_executor():
    from kbmetal.executors import make_executor

    with make_executor("serial") as ex:
        _check({task.key: result for task, result in ex.run(_tasks())})


def test_local_pool_executor():
    from kbmetal.executors import make_executor

    with make_executor("local", concurrency=2) as ex:
        assert ex.concurrency == 2
        _check({task.key: result for task, result in ex.run(_tasks())})


def test_ray_executor():
    pytest.importorskip("ray")
    from kbmetal.executors import make_executor

    with make_executor("ray", concurrency=2) as ex:
        _check({task.key: result for task, result in ex.run(_tasks())})


def test_unknown_executor():
    from kbmetal.executors import make_executor

    with pytest.raises(ValueError, match="known: local, serial, ray"):
        make_executor("dask")
