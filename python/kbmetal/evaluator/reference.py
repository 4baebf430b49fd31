"""The reference, computed in the judge's process where no candidate code ever runs.

Copies of the problem's `Model`, built from the same seed as the candidate's `ModelNew`:

- the problem's dtype on the target device: PyTorch's own answer, whose error calibrates the
  tolerance, and what the eager baseline times;
- float64: the ground truth the tolerance rule measures against. It runs on the `exact_device`:
  the GPU itself where it has float64 (CUDA), else the CPU (Metal has none); a model whose ops
  have no float64 kernel on the GPU falls back to the CPU;
- float64 again, with every weight and floating input nudged by one rounding error of the
  problem's dtype (relative noise of the dtype's unit roundoff): how far the answer moves under
  the rounding any implementation at that dtype must do. For a well-conditioned reference this is
  as small as PyTorch's own error; for an ill-conditioned one (1 - cos of nearly parallel vectors)
  it is what keeps a correct kernel with another summation order from failing.

`Reference.compute(inputs, nudge_seed)` runs all three on one trial's inputs and keeps only what
judging a candidate needs (`TrialReference`): the inputs, the float64 outputs (PyTorch's where
there is no float64 path) and each output's calibrated tolerance. The native and nudged outputs
are dropped once the tolerance is calibrated, so a judge can keep the references of a problem for
every candidate of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from . import tolerance
from .oprecord import OpProfile, OpRecorder


def flatten(value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, torch.Tensor):
        return "tensor", [value]
    if isinstance(value, (tuple, list)):
        return type(value).__name__, list(value)
    return "value", [value]


_UNIT_ROUNDOFF = {
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
    torch.float64: 2.0**-53,
}


def _nudge(value: Any, roundoff: float, gen: torch.Generator) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        x = value.to(device=gen.device, dtype=torch.float64)
        noise = torch.rand(x.shape, generator=gen, dtype=torch.float64, device=gen.device)
        return x * noise.mul_(2.0).sub_(1.0).mul_(roundoff).add_(1.0)
    return value.to(gen.device, copy=True) if isinstance(value, torch.Tensor) else value


def _as_float64(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            return value.to(device=device, dtype=torch.float64)
        return value.to(device, copy=True)
    return value


@dataclass
class ExpectedOutput:
    """What one output of the candidate is held to."""

    value: Any = None  # a non-tensor output: the reference's value itself
    tensor: torch.Tensor | None = None  # float64 (or PyTorch's, `reference == "native"`)
    dtype: torch.dtype | None = None  # the dtype and shape the candidate must return: PyTorch's
    shape: tuple[int, ...] = ()
    calibration: tolerance.Calibration | None = None  # None: compared exactly (integers, bools)
    reference: str = "float64"

    @property
    def is_tensor(self) -> bool:
        return self.tensor is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the candidate's output at this position (what the exchange reserves)."""
        if self.tensor is None:
            return 0
        numel = 1
        for d in self.shape:
            numel *= d
        return numel * self.dtype.itemsize


@dataclass
class TrialReference:
    """One trial's inputs and what a candidate's outputs on them are held to."""

    inputs: list[Any]  # on the reference's exact device
    structure: str
    outputs: list[ExpectedOutput] = field(default_factory=list)
    exact_error: str | None = None  # why there is no float64 reference, when there is none

    @property
    def nbytes(self) -> int:
        held = [x for x in self.inputs if isinstance(x, torch.Tensor)]
        held += [o.tensor for o in self.outputs if o.tensor is not None]
        return sum(t.numel() * t.element_size() for t in held)


class Reference:
    def __init__(
        self,
        instance,
        device: str,
        weight_seed: int,
        synchronize=None,
        exact_device: str = "cpu",
    ):
        self.instance = instance
        self.device = device
        self.native_model = instance.make_model(weight_seed, device=device)
        self._synchronize = synchronize or (lambda: None)
        self.exact_device = exact_device
        self.exact_model = None
        self.nudged_model = None
        self.exact_error: str | None = None
        self._roundoff = _UNIT_ROUNDOFF.get(instance.torch_dtype, 2.0**-24)
        try:
            self.exact_model = instance.make_model(weight_seed).to(torch.float64)
            self.nudged_model = instance.make_model(weight_seed).to(torch.float64)
            gen = torch.Generator().manual_seed(weight_seed)
            with torch.no_grad():
                for tensor in [*self.nudged_model.parameters(), *self.nudged_model.buffers()]:
                    if tensor.is_floating_point():
                        tensor.copy_(_nudge(tensor, self._roundoff, gen))
            self.exact_model.to(exact_device)
            self.nudged_model.to(exact_device)
        except Exception as exc:  # a module that refuses float64; compare against native
            self.exact_model = self.nudged_model = None
            self.exact_error = f"{type(exc).__name__}: {exc}"

    @property
    def nbytes(self) -> int:
        models = [m for m in (self.native_model, self.exact_model, self.nudged_model) if m is not None]
        return sum(
            t.numel() * t.element_size() for m in models for t in [*m.parameters(), *m.buffers()]
        )

    def compute(
        self, inputs: list[Any], nudge_seed: int, profile: OpProfile | None = None
    ) -> TrialReference:
        """The reference outputs on `inputs` (on the exact device) and their tolerances. With
        `profile`, the native run's ops land there: what the candidate must not hand back to
        PyTorch. The inputs are never modified (each model gets its own copy)."""
        with torch.no_grad():
            device_inputs = [x.to(self.device, copy=True) if isinstance(x, torch.Tensor) else x for x in inputs]
            if profile is not None:
                recorder = OpRecorder(timed=False)
                with recorder:
                    native = self.native_model(*device_inputs)
                profile.ops.update(recorder.profile.ops)
            else:
                native = self.native_model(*device_inputs)
            self._synchronize()
        structure, native_values = flatten(native)
        exact_values, nudged_values = self._exact(inputs, nudge_seed)
        inputs_max = tolerance.input_scale(inputs)
        outputs = [
            self._expected(
                n,
                exact_values[i] if exact_values is not None else None,
                nudged_values[i] if nudged_values is not None else None,
                inputs_max,
            )
            for i, n in enumerate(native_values)
        ]
        return TrialReference(list(inputs), structure, outputs, self.exact_error if exact_values is None else None)

    def _exact(self, inputs: list[Any], nudge_seed: int) -> tuple[list | None, list | None]:
        """float64 and nudged float64 outputs, on the GPU when it can, else on the CPU."""
        while self.exact_model is not None:
            device = self.exact_device
            try:
                with torch.no_grad():
                    _, exact = flatten(self.exact_model(*[_as_float64(x, device) for x in inputs]))
                    gen = torch.Generator(device).manual_seed(nudge_seed)
                    _, nudged = flatten(self.nudged_model(*[_nudge(x, self._roundoff, gen) for x in inputs]))
                return exact, nudged
            except Exception as exc:
                if device != "cpu":  # an op with no float64 kernel on the device: the CPU has one
                    self.exact_device = "cpu"
                    self.exact_model.to("cpu")
                    self.nudged_model.to("cpu")
                    continue
                self.exact_model = self.nudged_model = None
                self.exact_error = f"{type(exc).__name__}: {exc}"
        return None, None

    def _expected(self, native: Any, exact: Any, nudged: Any, inputs_max: float) -> ExpectedOutput:
        if not isinstance(native, torch.Tensor):
            return ExpectedOutput(value=native)
        dtype, shape = native.dtype, tuple(native.shape)
        home = exact.device if isinstance(exact, torch.Tensor) else torch.device(self.exact_device)
        native = native.detach().to(home)
        if not isinstance(exact, torch.Tensor):
            calibration = tolerance.calibrate(native, None, dtype) if _inexact(native) else None
            return ExpectedOutput(None, native, dtype, shape, calibration, reference="native")
        if not _inexact(native):
            return ExpectedOutput(None, exact.detach(), dtype, shape, None)
        natives = [native] + (
            [nudged.detach()] if isinstance(nudged, torch.Tensor) and nudged.shape == native.shape else []
        )
        expected = exact.detach()
        if native.is_complex():
            calibration = tolerance.calibrate(
                torch.view_as_real(expected),
                [torch.view_as_real(n) for n in natives],
                torch.view_as_real(native).dtype,
                inputs_max,
            )
        else:
            calibration = tolerance.calibrate(expected, natives, dtype, inputs_max)
        return ExpectedOutput(None, expected, dtype, shape, calibration)


def _inexact(t: torch.Tensor) -> bool:
    return t.is_floating_point() or t.is_complex()
