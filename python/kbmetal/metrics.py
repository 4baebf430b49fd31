"""fast_p and the geometric-mean speedup, exactly as KernelBench defines them.

KernelBench (Ouyang et al., 2025) scores a set of N problems, one kernel each:

    fast_p = (1 / N) * #{ problems whose kernel is correct AND speedup > p }

with speedup = baseline time / kernel time. N counts every problem attempted: a kernel that does
not compile, crashes or is wrong stays in the denominator. fast_0 is the share of correct kernels
(any correct kernel has a speedup above 0). The comparison is strict: a speedup of exactly p
does not count.

Where a problem has several candidates (attempts, models), the problem's result is its best
candidate: a correct one before an incorrect one, then the fastest, then the smallest error
margin. That is the supervisor's choice too.

Where timings are not performance (the sim), speedups are None: fast_0 is still the correct
share, and fast_p for p > 0 is None (not measurable), never 0.

The geometric mean of speedups runs over correct candidates with a speedup, since a speedup of a
wrong kernel means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PS = (0.0, 1.0, 1.5, 2.0)
BASELINES = ("eager", "compile")


@dataclass(frozen=True)
class ProblemResult:
    problem_id: str
    level: int
    correct: bool
    speedup: float | None = None  # against eager
    speedup_compile: float | None = None
    margin: float | None = None

    def speedup_against(self, baseline: str) -> float | None:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; known: {', '.join(BASELINES)}")
        return self.speedup if baseline == "eager" else self.speedup_compile


def _rank(result: ProblemResult) -> tuple:
    speed = result.speedup if result.speedup is not None else -math.inf
    margin = result.margin if result.margin is not None else math.inf
    return (result.correct, speed, -margin)


def best_per_problem(results: Iterable[ProblemResult]) -> list[ProblemResult]:
    best: dict[str, ProblemResult] = {}
    for r in results:
        if r.problem_id not in best or _rank(r) > _rank(best[r.problem_id]):
            best[r.problem_id] = r
    return sorted(best.values(), key=lambda r: (r.level, r.problem_id))


def fast_p(
    results: Iterable[ProblemResult], p: float, baseline: str = "eager", n: int | None = None
) -> float | None:
    """The share of problems solved correctly with speedup > p. `n` overrides the denominator
    (the number of problems attempted, when some have no result at all)."""
    per_problem = best_per_problem(results)
    total = len(per_problem) if n is None else n
    if total == 0:
        return None
    correct = [r for r in per_problem if r.correct]
    if all(r.speedup_against(baseline) is None for r in per_problem):
        # no timings that are performance (the sim): only fast_0 is defined
        return len(correct) / total if p <= 0 else None
    fast = [r for r in correct if (s := r.speedup_against(baseline)) is not None and s > p]
    return len(fast) / total


def geometric_mean_speedup(results: Iterable[ProblemResult], baseline: str = "eager") -> float | None:
    speedups = [
        s
        for r in best_per_problem(results)
        if r.correct and (s := r.speedup_against(baseline)) is not None and s > 0
    ]
    if not speedups:
        return None
    return math.exp(sum(math.log(s) for s in speedups) / len(speedups))


def summarize(results: Iterable[ProblemResult], ps: Iterable[float] = DEFAULT_PS) -> dict[str, dict]:
    """Per level ("L1", "L2", ...) and over everything ("all"): counts, fast_p and geomeans."""
    results = list(results)
    ps = tuple(ps)
    groups: dict[str, list[ProblemResult]] = {"all": results}
    for r in results:
        groups.setdefault(f"L{r.level}", []).append(r)
    summary = {}
    for name, group in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        per_problem = best_per_problem(group)
        summary[name] = {
            "problems": len(per_problem),
            "correct": sum(r.correct for r in per_problem),
            "fast_p": {baseline: {p: fast_p(group, p, baseline) for p in ps} for baseline in BASELINES},
            "geomean_speedup": {baseline: geometric_mean_speedup(group, baseline) for baseline in BASELINES},
        }
    return summary


def results_from_rows(rows: Iterable[dict]) -> list[ProblemResult]:
    """ProblemResults from the store's verdict rows (Store.verdicts)."""
    return [
        ProblemResult(
            problem_id=row["problem_id"],
            level=int(row.get("level") or 0),
            correct=bool(row["passed"]),
            speedup=row.get("speedup"),
            speedup_compile=row.get("speedup_compile"),
            margin=row.get("margin"),
        )
        for row in rows
    ]
