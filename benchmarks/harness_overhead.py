"""What judging costs: the evaluator's own overhead per candidate, on the sim, on this machine.

    PYTHONPATH=src:python python benchmarks/harness_overhead.py [--candidates N] [--concurrency C]

Sections:
  worker     a fresh candidate process: spawn to ready (interpreter, torch, the harness), then
             loading a solution whose kernels are in the disk cache; median of 5
  evaluate   one whole verdict (static scan, reference, 4 trials, held-out trial, timing) with a
             judge that keeps the next worker pre-started: wall and CPU seconds, median of N
  run        `bench run` over N solutions with a local pool of C judges: candidates per minute

The solutions are the tests' honest MSL kernels (tests/kbmetal/kbm_kernels.py) on the tests'
fixture problems at their `small` sizes. Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "python"), str(REPO / "tests" / "kbmetal")]

from kbm_helpers import PROBLEMS, load  # noqa: E402
from kbm_kernels import candidate  # noqa: E402

IDS = ["L1-001", "L1-002", "L1-003", "L1-004", "L2-001"]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def section_worker() -> None:
    from kbmetal.evaluator.session import WorkerSession

    source = pathlib.Path(tempfile.mkdtemp()) / "candidate.py"
    source.write_text(candidate("L1-001"))
    ready, loads = [], []
    for _ in range(5):
        start = time.perf_counter()
        session = WorkerSession().start()
        session.wait_ready()
        ready.append(time.perf_counter() - start)
        start = time.perf_counter()
        reply = session.request(
            {
                "op": "load",
                "problem": str(load("L1-001").path),
                "backend": "sim",
                "device": "cpu",
                "source": str(source),
            },
            120,
            "import",
        )
        loads.append(time.perf_counter() - start)
        assert reply.get("ok"), reply
        session.discard()
    print(
        f"worker: spawn to ready {statistics.median(ready):.2f} s, load a cached solution "
        f"{statistics.median(loads):.2f} s (median of 5)"
    )


def section_evaluate(n: int) -> None:
    from kbmetal.evaluator import EvalOptions, Judge

    walls, cpus = [], []
    with Judge(EvalOptions(), prestart=True) as judge:
        judge.evaluate(load("L1-001"), candidate("L1-001"), "sim")  # warm the kernel cache
        for i in range(n):
            pid = IDS[i % len(IDS)]
            wall, cpu = time.perf_counter(), cpu_seconds()
            verdict = judge.evaluate(load(pid), candidate(pid), "sim")
            walls.append(time.perf_counter() - wall)
            cpus.append(cpu_seconds() - cpu)
            assert verdict.passed, verdict.reason
    print(
        f"evaluate: {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU per verdict "
        f"(median of {n}; the CPU figure includes the next worker's start-up)"
    )


def section_run(n: int, concurrency: int) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="kbmetal-harness-bench-"))
    folder = work / "solutions"
    folder.mkdir()
    for pid in IDS[: min(n, len(IDS))]:
        (folder / f"{pid}.py").write_text(candidate(pid))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "python")]))
    args = [
        sys.executable,
        "-m",
        "kbmetal.bench",
        "--store",
        str(work / "store.sqlite"),
        "run",
        "--solutions",
        str(folder),
        "--problems-dir",
        str(PROBLEMS),
        "--concurrency",
        str(concurrency),
        "--fresh",
    ]
    start = time.perf_counter()
    result = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    count = len(list(folder.glob("*.py")))
    print(
        f"run: {count} solutions, {concurrency} judges: {elapsed:.1f} s end to end "
        f"({60 * count / elapsed:.0f} candidates per minute, exit {result.returncode})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    section_worker()
    section_evaluate(args.candidates)
    section_run(args.candidates, args.concurrency)


if __name__ == "__main__":
    main()
