"""What the generation tests share: planted keys, the command line as a subprocess, judges, specs."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
from procenv import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Key values a test can look for wherever they must not be; each holds "PLANTED".
OPENAI_KEY = "sk-PLANTED-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-PLANTED-anthropic-0123456789"
GEMINI_KEY = "AIza-PLANTED-gemini-0123456789"


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def subprocess_env(**extra: str) -> dict[str, str]:
    return child_env(COLUMNS="200", **extra)


def bench_process(*args, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kbmetal.bench", *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def files_containing(folder: pathlib.Path, needle: str) -> list[pathlib.Path]:
    """Every file under `folder` whose bytes contain `needle` (the store, its WAL, logs, cache...)."""
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def _timing(ms: float, subject: str = "candidate"):
    from kbmetal.verdict import Timing

    return Timing(subject=subject, method="injected for the test", is_performance=True, median_ms=ms,
                  min_ms=ms * 0.98, max_ms=ms * 1.05, iqr_ms=ms * 0.01, runs=50, warmup=5)


def timed_sim_judge(times: dict[str, float], eager_ms: float = 1.5, compile_ms: float = 1.2):
    """Judges on the sim for real, then attaches performance timings by kernel variant."""
    from kbmetal.executors import run_task
    from kbmetal.verdict import Verdict

    def judge(task):
        result = run_task(task)
        verdict = Verdict.from_dict(result.verdict)
        assert verdict.passed, verdict.summary()
        variant = next(v for v in times if f"variant: {v}" in task.source)
        verdict.timing = _timing(times[variant])
        verdict.baselines = {"eager": _timing(eager_ms, "eager"), "compile": _timing(compile_ms, "compile")}
        verdict.speedup = eager_ms / times[variant]
        verdict.speedup_compile = compile_ms / times[variant]
        return dataclasses.replace(result, verdict=verdict.to_dict())

    return judge


def fake_judge(passes):
    """Judges without running anything: passes(source) -> bool. For tests of the loop itself."""
    from kbmetal.executors import TaskResult
    from kbmetal.problems import load_problem
    from kbmetal.verdict import Verdict

    def judge(task):
        problem = load_problem(task.problem_path)
        ok = passes(task.source)
        verdict = Verdict(problem_id=problem.id, backend="sim", device="fake", sizes="small", dtype="float32",
                          passed=ok, stage="complete" if ok else "correctness", margin=0.1 if ok else 3.0,
                          error_kind=None if ok else "mismatch",
                          reason="passed every trial and guard" if ok else "trial t1: values differ")
        return TaskResult(task.key, verdict=verdict.to_dict())

    return judge


def specs(server, *names, **fields):
    """openai:NAME models served by the scripted server."""
    from kbmetal.generate.config import Config, resolve_models

    return resolve_models([f"openai:{n}" for n in names], Config(), {"base_url": server.openai_url, **fields})
