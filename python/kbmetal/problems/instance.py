"""A problem at chosen sizes and dtype: builds seeded models and inputs."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING

import torch

from . import distributions as dist
from .errors import ProblemError, raised
from .problem import DTYPES

if TYPE_CHECKING:
    from .problem import Problem


class ProblemInstance:
    """A fresh module namespace with sizes applied. Cheap to create; holds no tensors."""

    def __init__(
        self,
        problem: Problem,
        module: types.ModuleType,
        sizes: dict[str, object],
        preset: str | None,
        dtype: str,
    ):
        self.problem = problem
        self.module = module
        self.sizes = sizes
        self.preset = preset
        self.dtype = dtype
        self._distributions: list[str] | None = None

    def __repr__(self) -> str:
        where = self.preset or "custom"
        return f"<ProblemInstance {self.problem.id} {self.problem.name} sizes={where} {self.dtype}>"

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def init_inputs(self, seed: int = 0) -> list:
        """`get_init_inputs()` under `seed` (in a forked RNG: the caller's state is kept)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                values = self.module.get_init_inputs()
            except Exception as exc:
                raise raised(self.problem.path, "get_init_inputs()", exc) from None
        return self._as_list(values, "get_init_inputs()")

    def make_model(self, seed: int, device: str | torch.device | None = None) -> torch.nn.Module:
        """`Model(*get_init_inputs())` seeded as KernelBench seeds it, cast to the dtype.

        As upstream's evaluator does: seed, get_init_inputs(), seed again, construct (under
        no_grad). A candidate's ModelNew built the same way (`init_inputs(seed)`, then
        `torch.manual_seed(seed)`, then the constructor) gets the same initial weights. The RNG is
        forked, so the caller's global random state is left as it was.
        """
        init = self.init_inputs(seed)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            try:
                model = self.module.Model(*init)
            except Exception as exc:
                raise raised(self.problem.path, "Model(*get_init_inputs())", exc) from None
        model = model.to(dtype=self.torch_dtype)
        return model.to(device) if device is not None else model

    def make_inputs(
        self, seed: int, distribution: str = dist.NATIVE, device: str | torch.device = "cpu"
    ) -> list:
        """Inputs for one trial: `get_inputs()` under `seed`, with floating inputs redrawn.

        Floating tensors whose domain is not "fixed" are drawn from `distribution` (see
        kbmetal.problems.distributions); everything else is what `get_inputs()` gave. Floating
        tensors are cast to the instance's dtype.
        """
        if distribution not in dist.DISTRIBUTIONS:
            raise ValueError(
                f"unknown input distribution {distribution!r}; known: {', '.join(dist.DISTRIBUTIONS)}"
            )
        inputs = self._native_inputs(seed)
        result = []
        for index, value in enumerate(inputs):
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    domain = self.input_domain(index)
                    if distribution != dist.NATIVE and domain in dist.REDISTRIBUTABLE:
                        gen = dist.generator_for(seed, index, distribution)
                        value = dist.draw(distribution, domain, value, gen)
                    value = value.to(self.torch_dtype)
                value = value.to(device)
            result.append(value)
        return result

    def input_domain(self, index: int) -> str:
        return self.problem.input_domains.get(index, "real")

    def distributions(self) -> list[str]:
        """The distributions that change at least one input; always starts with "native"."""
        if self._distributions is None:
            from .tracing import fake_inputs

            try:
                inputs = fake_inputs(self)
            except Exception:
                # get_inputs() needs real data (e.g. reads a value back); draw it for real.
                inputs = self._native_inputs(0)
            redrawn = any(
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and self.input_domain(index) in dist.REDISTRIBUTABLE
                for index, value in enumerate(inputs)
            )
            self._distributions = list(dist.DISTRIBUTIONS) if redrawn else [dist.NATIVE]
        return list(self._distributions)

    def _native_inputs(self, seed: int) -> list:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                values = self.module.get_inputs()
            except Exception as exc:
                raise raised(self.problem.path, "get_inputs()", exc) from None
        inputs = self._as_list(values, "get_inputs()")
        beyond = [index for index in self.problem.input_domains if index >= len(inputs)]
        if beyond:
            raise ProblemError(
                self.problem.path,
                f"INPUT_DOMAINS names input {beyond[0]}, but get_inputs() returns "
                f"{len(inputs)} input(s)",
            )
        return inputs

    def _as_list(self, values: object, what: str) -> list:
        if not isinstance(values, (list, tuple)):
            raise ProblemError(
                self.problem.path, f"{what} returned {type(values).__name__}; it must return a list"
            )
        return list(values)
