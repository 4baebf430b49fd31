"""The trial plan: which inputs each forward call of a candidate sees.

Every trial draws its inputs from a fresh seed taken from the operating system's entropy when the
evaluation starts (or derived from a user's seed, for a repeatable run), so a candidate cannot
precompute its answers. The plan, for a problem whose inputs can be redistributed:

    t1  fresh tensors          the problem's own distribution
    t2  the same tensors, new values written in place       (a cache keyed on pointer or id misses)
    t3  the same tensors, new values, version counter kept  (a cache keyed on pointer + _version misses)
    t4  fresh tensors          heavy-tailed, and further trials cycle through the distributions
    heldout  fresh model and tensors at the `heldout` preset's sizes (hard-coded shapes fail)

Distributions cycle through `ProblemInstance.distributions()` (native, normal, offset_scaled,
heavy_tailed); a problem whose inputs are all fixed or integer gets native inputs under new seeds.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

_REFILLS = ("fresh", "inplace", "inplace-quiet")


@dataclass(frozen=True)
class TrialSpec:
    name: str
    label: str  # "main" or "heldout"
    distribution: str
    refill: str
    seed: int


def seed_source(seed: int | None) -> random.Random:
    """Unpredictable seeds by default; a fixed master seed makes the whole plan repeatable."""
    return random.Random(secrets.randbits(64) if seed is None else seed)


def applicable_distributions(instance, native_inputs: list) -> list[str]:
    """All distributions when some floating input may be redrawn (its domain is not "fixed"),
    else only "native": the rule of ProblemInstance.distributions(), read off real inputs."""
    import torch

    from ..problems.distributions import DISTRIBUTIONS, NATIVE, REDISTRIBUTABLE

    redrawn = any(
        isinstance(x, torch.Tensor) and x.is_floating_point() and instance.input_domain(i) in REDISTRIBUTABLE
        for i, x in enumerate(native_inputs)
    )
    return list(DISTRIBUTIONS) if redrawn else [NATIVE]


def plan(
    distributions: list[str], trials: int, heldout: bool, rng: random.Random, first_seed: int | None = None
) -> list[TrialSpec]:
    distributions = list(distributions) or ["native"]
    order = distributions
    specs = []
    for i in range(max(1, trials)):
        refill = _REFILLS[i] if i < len(_REFILLS) else "fresh"
        specs.append(
            TrialSpec(
                name=f"t{i + 1}",
                label="main",
                distribution=order[i % len(order)],
                refill=refill,
                seed=first_seed if i == 0 and first_seed is not None else rng.getrandbits(63),
            )
        )
    if heldout:
        specs.append(
            TrialSpec(
                name="heldout",
                label="heldout",
                distribution=order[0],
                refill="fresh",
                seed=rng.getrandbits(63),
            )
        )
    return specs
