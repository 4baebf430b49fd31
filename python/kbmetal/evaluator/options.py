"""Everything a user can tune about one evaluation, with the defaults that make it honest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class EvalOptions:
    # correctness
    trials: int = 4  # at the main sizes; plus one at held-out sizes where the problem has them
    heldout: bool = True
    # guards
    strict: bool = True  # PyTorch doing the reference's work fails; False: allowed and reported
    require_kernel: bool = True  # a forward must launch at least one kernel of the backend
    # timing
    timing: bool = True
    baselines: bool = True  # eager and torch.compile, where the backend's timings are performance
    compile_baseline: bool = True
    warmup: int | None = None  # None: the backend's default (sim: 1, GPU: 5)
    min_runs: int | None = None  # sim: 3, GPU: 20
    max_runs: int | None = None  # sim: 3, GPU: 500
    budget_ms: float | None = None  # most time for timed runs past min_runs (sim: 0, GPU: 1000)
    stable_within: float | None = None  # stop once the median's 95% CI is within this share (GPU: 0.01)
    speed_of_light_slack: float = 0.9  # flag candidates faster than this share of the bound
    # judging many candidates: one secret set of seeds and references per problem per judge (a
    # run); False draws fresh seeds, and recomputes the references, for every candidate
    reuse_references: bool = True
    # limits (seconds; bytes through memory_limit_mb)
    startup_timeout: float = 120.0
    import_timeout: float = 300.0  # includes compiling the candidate's kernels
    init_timeout: float = 60.0
    trial_timeout: float = 120.0
    timing_timeout: float = 300.0
    memory_limit_mb: int | None = 8192
    threads: int | None = None  # torch threads in the candidate's process (None: torch's choice)
    # reproducibility: None draws seeds the candidate cannot predict; an int makes a run repeatable
    seed: int | None = None
    # the device's reader-writer lock file (devicelock.py): exclusive around timing, shared around
    # the other stages that use the device; None: one per backend where timings are performance
    timing_lock: str | None = None
    # candidate processes forked from a fork server that has imported torch (zygote.py); False: a
    # fresh interpreter per candidate (seconds more each). Either way, one process per candidate.
    fork_server: bool = True

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EvalOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(
                f"unknown evaluation option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**kwargs)

    def timing_plan(self, is_performance: bool) -> dict[str, float]:
        if is_performance:
            defaults = {"warmup": 5, "min_runs": 20, "max_runs": 500, "budget_ms": 1000.0, "stable_within": 0.01}
        else:
            defaults = {"warmup": 1, "min_runs": 3, "max_runs": 3, "budget_ms": 0.0, "stable_within": 0.0}
        chosen = {
            "warmup": self.warmup,
            "min_runs": self.min_runs,
            "max_runs": self.max_runs,
            "budget_ms": self.budget_ms,
            "stable_within": self.stable_within,
        }
        plan = {k: (v if v is not None else defaults[k]) for k, v in chosen.items()}
        plan["max_runs"] = max(plan["max_runs"], plan["min_runs"])
        return plan

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
