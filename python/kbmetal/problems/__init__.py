"""KernelBench-format problems: loading, sizes, input distributions, lint and roofline.

    problem = load_problem("problems/level1/019_relu.py")       # or find_problem("L1-019")
    inst = problem.instantiate("small")                         # a preset, a dict, "auto-small"
    model = inst.make_model(seed=0)
    inputs = inst.make_inputs(seed=1, distribution="heavy_tailed")

The file format is docs/problem-format.md. Lint is `kbmetal.problems.lint`, FLOP and byte counts
`kbmetal.problems.roofline`, and `python -m kbmetal.problems.index` regenerates problems/index.json.
"""

from .catalog import find_problem, load_problems, problem_files, problems_root
from .distributions import DISTRIBUTIONS
from .errors import ProblemError
from .instance import ProblemInstance
from .problem import CATEGORIES, DOMAINS, Problem, load_problem
from .sizing import AUTO_SMALL, auto_small, parse_size_overrides

__all__ = [
    "AUTO_SMALL",
    "CATEGORIES",
    "DISTRIBUTIONS",
    "DOMAINS",
    "Problem",
    "ProblemError",
    "ProblemInstance",
    "auto_small",
    "find_problem",
    "load_problem",
    "load_problems",
    "parse_size_overrides",
    "problem_files",
    "problems_root",
]
