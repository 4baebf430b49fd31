"""The reference, computed in the judge's process where no candidate code ever runs.

Copies of the problem's `Model`, built from the same seed as the candidate's `ModelNew`:

- float64 on the CPU: the ground truth the tolerance rule measures against;
- the problem's dtype on the target device: PyTorch's own answer, whose error calibrates the
  tolerance, and what the eager baseline times;
- float64 again, with every weight and floating input nudged by one rounding error of the
  problem's dtype (relative noise of the dtype's unit roundoff): how far the answer moves under
  the rounding any implementation at that dtype must do. For a well-conditioned reference this is
  as small as PyTorch's own error; for an ill-conditioned one (1 - cos of nearly parallel vectors)
  it is what keeps a correct kernel with another summation order from failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .oprecord import OpProfile, OpRecorder


def flatten(value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, torch.Tensor):
        return "tensor", [value]
    if isinstance(value, (tuple, list)):
        return type(value).__name__, list(value)
    return "value", [value]


def _to_cpu(values: list[Any]) -> list[Any]:
    return [v.detach().to("cpu") if isinstance(v, torch.Tensor) else v for v in values]


def _as_float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)
    return value


_UNIT_ROUNDOFF = {
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
    torch.float64: 2.0**-53,
}


def _nudge(value: Any, roundoff: float, gen: torch.Generator) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        noise = torch.rand(value.shape, generator=gen, dtype=torch.float64) * 2 - 1
        return value.to(torch.float64) * (1 + roundoff * noise)
    return value


@dataclass
class ReferenceOutputs:
    structure: str
    native: list[Any]  # PyTorch at the problem's dtype, moved to the CPU
    exact: list[Any] | None  # float64 on the CPU; None where the model has no float64 path
    exact_error: str | None = None
    nudged: list[Any] | None = None  # float64 with rounding-sized noise on weights and inputs


class Reference:
    def __init__(self, instance, device: str, weight_seed: int, synchronize=None):
        self.instance = instance
        self.device = device
        self.native_model = instance.make_model(weight_seed, device=device)
        self._synchronize = synchronize or (lambda: None)
        self.exact_model = None
        self.nudged_model = None
        self.exact_error: str | None = None
        self._roundoff = _UNIT_ROUNDOFF.get(instance.torch_dtype, 2.0**-24)
        self._gen = torch.Generator().manual_seed(weight_seed)
        try:
            self.exact_model = instance.make_model(weight_seed).to(torch.float64)
            self.nudged_model = instance.make_model(weight_seed).to(torch.float64)
            with torch.no_grad():
                for tensor in [*self.nudged_model.parameters(), *self.nudged_model.buffers()]:
                    if tensor.is_floating_point():
                        tensor.copy_(_nudge(tensor, self._roundoff, self._gen))
        except Exception as exc:  # a module that refuses float64; compare against native
            self.exact_model = self.nudged_model = None
            self.exact_error = f"{type(exc).__name__}: {exc}"

    def run(self, inputs: list[Any], profile: OpProfile | None = None) -> ReferenceOutputs:
        """Both references on `inputs` (CPU tensors). With `profile`, the native run's ops land
        there: what the candidate must not hand back to PyTorch."""
        device_inputs = [x.to(self.device) if isinstance(x, torch.Tensor) else x for x in inputs]
        with torch.no_grad():
            if profile is not None:
                recorder = OpRecorder(timed=False)
                with recorder:
                    native = self.native_model(*device_inputs)
                profile.ops.update(recorder.profile.ops)
            else:
                native = self.native_model(*device_inputs)
            self._synchronize()
        structure, native_values = flatten(native)
        exact_values, nudged_values, error = None, None, self.exact_error
        if self.exact_model is not None:
            try:
                with torch.no_grad():
                    _, exact_values = flatten(self.exact_model(*[_as_float64(x) for x in inputs]))
                    nudged_inputs = [_nudge(x, self._roundoff, self._gen) for x in inputs]
                    _, nudged_values = flatten(self.nudged_model(*nudged_inputs))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.exact_model = self.nudged_model = None
                self.exact_error = error
                exact_values = nudged_values = None
        return ReferenceOutputs(
            structure,
            _to_cpu(native_values),
            _to_cpu(exact_values) if exact_values else None,
            error,
            _to_cpu(nudged_values) if nudged_values else None,
        )
