"""What a judge keeps between candidates: each problem prepared once, its references at hand.

A run sends a judge many candidates, and a generation run many of one problem. Everything that
depends only on the problem (at its sizes, dtype and backend) is done for the first of them and
kept in a `PreparedProblem`:

- the secret seeds of the weights and of every trial, drawn from the operating system's entropy
  when the judge first meets the problem (or derived from the user's seed). They never leave the
  judge's process: a candidate sees its own trials' inputs, as it would with seeds of its own,
  and cannot predict them;
- the trial plan (distributions and refills, trials.py);
- the reference models, and each trial's `TrialReference`: inputs, float64 outputs and calibrated
  tolerances, computed on first use;
- the ATen ops the reference runs (what strict mode forbids the candidate).

`ReferenceCache` keeps prepared problems up to a byte budget (of device memory where the
references live on a GPU), dropping the least recently used. A problem whose references alone
exceed the budget keeps only the trial in use (`forget`): its next candidate recomputes the others
from the same secret seeds, so it sees the same inputs. `EvalOptions.reuse_references = False`
gives every candidate fresh seeds and references instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import trials
from .inputs import draw_inputs
from .oprecord import OpProfile
from .reference import Reference, TrialReference

# Share of the memory where references live that a judge's cache may hold: two judges share one
# GPU by default, and candidates need the rest.
_BUDGET_SHARE = 8


def problem_key(problem, sizes: Any, overrides: Any, dtype: Any, backend: str, options) -> str:
    """Everything that changes a problem's references: the file's text, the sizes asked for, the
    dtype, the backend, and the options that shape the trial plan."""
    payload = {
        "path": str(problem.path),
        "source": hashlib.sha256(problem.source.encode()).hexdigest(),
        "sizes": sizes,
        "overrides": overrides,
        "dtype": dtype,
        "backend": backend,
        "trials": options.trials,
        "heldout": options.heldout,
        "seed": options.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class PreparedProblem:
    def __init__(self, instances: dict[str, Any], backend, options, synchronize: Callable[[], None]):
        """`instances`: "main" and, when the problem has held-out sizes, "heldout"."""
        self.instances = instances
        self.backend = backend
        self._synchronize = synchronize
        rng = trials.seed_source(options.seed)
        self.weight_seeds = {label: rng.getrandbits(63) for label in ("main", "heldout")}
        first_seed = rng.getrandbits(63)
        main = instances["main"]
        first = draw_inputs(main, first_seed, "native", backend.exact_device)
        distributions = trials.applicable_distributions(main, first)
        self.plan = trials.plan(distributions, options.trials, "heldout" in instances, rng, first_seed=first_seed)
        self._nudge_seeds = {spec.name: rng.getrandbits(63) for spec in self.plan}
        self._drawn = {self.plan[0].name: first}
        self._references: dict[str, Reference] = {}
        self._trials: dict[str, TrialReference] = {}
        self.reference_ops = OpProfile()

    def reference(self, label: str) -> Reference:
        """The reference models at `label`'s sizes, built from that label's weight seed."""
        if label not in self._references:
            self._references[label] = Reference(
                self.instances[label],
                self.backend.torch_device,
                self.weight_seeds[label],
                self._synchronize,
                exact_device=self.backend.exact_device,
            )
        return self._references[label]

    def trial(self, spec: trials.TrialSpec) -> TrialReference:
        """The trial's inputs and expected outputs, computed the first time they are asked for."""
        found = self._trials.get(spec.name)
        if found is None:
            inputs = self._drawn.pop(spec.name, None)
            if inputs is None:
                inputs = draw_inputs(
                    self.instances[spec.label], spec.seed, spec.distribution, self.backend.exact_device
                )
            record_ops = spec.label == "main" and not self.reference_ops.ops
            found = self.reference(spec.label).compute(
                inputs, self._nudge_seeds[spec.name], self.reference_ops if record_ops else None
            )
            self._trials[spec.name] = found
        return found

    def forget(self, name: str) -> None:
        """Drop a trial's reference (memory over budget); asked for again, it is recomputed from
        the same seeds: the same inputs, the same expected outputs."""
        self._trials.pop(name, None)
        self._drawn.pop(name, None)

    @property
    def nbytes(self) -> int:
        held = sum(t.nbytes for t in self._trials.values())
        held += sum(x.numel() * x.element_size() for xs in self._drawn.values() for x in xs if hasattr(x, "numel"))
        return held + sum(r.nbytes for r in self._references.values())


def default_budget(device: str) -> int:
    """Bytes a judge's cache may hold where references live (`device`: "cuda" or "cpu")."""
    if device == "cuda":
        import torch

        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    else:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            total = 8 << 30
    return total // _BUDGET_SHARE


class ReferenceCache:
    """Prepared problems by key, least recently used dropped first when over the budget."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, PreparedProblem] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, make: Callable[[], PreparedProblem]) -> PreparedProblem:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        prepared = make()
        self._entries[key] = prepared
        return prepared

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self._entries.values())

    def trim(self, budget: int) -> int:
        """Drop the least recently used problems until what is kept fits `budget` bytes; a
        problem larger than the whole budget is not kept either (its next candidate recomputes).
        Returns the bytes still kept."""
        total = self.nbytes
        while self._entries and (total > budget or budget <= 0):  # a budget of nothing keeps nothing
            _, dropped = self._entries.popitem(last=False)
            total -= dropped.nbytes
        return total

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
