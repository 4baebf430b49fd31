"""kbmetal: have LLMs write GPU kernels for PyTorch reference modules, and judge them honestly.

    import kbmetal
    problem = kbmetal.load_problem("problems/level1/019_relu.py")   # or kbmetal.find_problem("L1-019")
    verdict = kbmetal.evaluate(problem, open("my_solution.py").read(), backend="sim")
    verdict.passed, verdict.stage, verdict.reason, verdict.max_abs_error, verdict.speedup

`evaluate` runs the candidate in its own process, compares its outputs with a float64 reference
under a tolerance calibrated on PyTorch's own error, applies every guard, and times it where the
backend's timings are real. Options (`trials`, `strict`, `memory_limit_mb`, timeouts...) are the
fields of `kbmetal.EvalOptions`. Results go to a `kbmetal.Store`; `kbmetal.metrics` computes fast_p.

Importing kbmetal is cheap: torch and the evaluator load on first use.
"""

from __future__ import annotations

from ._lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "evaluate": ("kbmetal.evaluator.judge", "evaluate"),
    "Judge": ("kbmetal.evaluator.judge", "Judge"),
    "EvalOptions": ("kbmetal.evaluator.options", "EvalOptions"),
    "Verdict": ("kbmetal.verdict", "Verdict"),
    "GuardFinding": ("kbmetal.verdict", "GuardFinding"),
    "Comparison": ("kbmetal.verdict", "Comparison"),
    "Timing": ("kbmetal.verdict", "Timing"),
    "load_problem": ("kbmetal.problems", "load_problem"),
    "load_problems": ("kbmetal.problems", "load_problems"),
    "find_problem": ("kbmetal.problems", "find_problem"),
    "Problem": ("kbmetal.problems", "Problem"),
    "ProblemError": ("kbmetal.problems", "ProblemError"),
    "Store": ("kbmetal.store", "Store"),
    "fast_p": ("kbmetal.metrics", "fast_p"),
    "geometric_mean_speedup": ("kbmetal.metrics", "geometric_mean_speedup"),
}

__all__ = sorted(_LAZY) + ["__version__"]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
