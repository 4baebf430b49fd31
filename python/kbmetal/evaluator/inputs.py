"""Trial inputs, drawn where the judge's reference runs.

`ProblemInstance.make_inputs` draws on the CPU: at a GPU's default sizes (tensors of 10^8
elements) a heavy-tailed draw is five normal draws and costs seconds of one core per trial, more
than judging everything else. `draw_inputs` gives the same inputs by the same rules (the
problem's `get_inputs()` under the trial's seed, floating inputs redrawn from the trial's
distribution by `kbmetal.problems.distributions`), but lets the random number generators of
`device` produce them: `get_inputs()` runs with `device` as the default device, and each redraw
uses a generator on `device` seeded exactly as `distributions.generator_for` seeds the CPU's.

On the CPU the result is bit for bit `make_inputs`'s. On a GPU it is a different draw from the
same distributions (a GPU's generator is not the CPU's), as unpredictable to a candidate and as
repeatable under a fixed seed.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..problems import ProblemError
from ..problems import distributions as dist


def _forked_rng(device: torch.device):
    """`torch.manual_seed` (which `make_inputs` calls) seeds every CUDA device too: keep the
    judge's own generator states as they were."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index], device_type="cuda")
    return contextlib.nullcontext()


def draw_inputs(instance, seed: int, distribution: str, device: str | torch.device) -> list[Any]:
    """The inputs of one trial on `device`: `instance.make_inputs(seed, distribution)`'s rules,
    drawn by `device`'s generators."""
    device = torch.device(device)
    if distribution not in dist.DISTRIBUTIONS:
        raise ValueError(
            f"unknown input distribution {distribution!r}; known: {', '.join(dist.DISTRIBUTIONS)}"
        )
    try:
        with _forked_rng(device), device:
            inputs = instance.make_inputs(seed, dist.NATIVE, device=device)
    except ProblemError:
        if device.type == "cpu":
            raise
        # a get_inputs() that only works on the CPU (it reads values back through numpy, say)
        inputs = instance.make_inputs(seed, dist.NATIVE, device=device)
    if distribution == dist.NATIVE:
        return inputs
    redrawn = []
    for index, value in enumerate(inputs):
        domain = instance.input_domain(index)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and domain in dist.REDISTRIBUTABLE:
            generator = torch.Generator(device)
            generator.manual_seed(dist.generator_for(seed, index, distribution).initial_seed())
            with device:
                value = dist.draw(distribution, domain, value, generator).to(instance.torch_dtype)
        redrawn.append(value)
    return redrawn
