"""The tolerance rule: a kernel is held to a fixed multiple of PyTorch's own error on the problem.

For every floating output of every trial the evaluator has: `expected`, the reference computed
in float64 on the CPU (Metal has no float64); `natives`, the same reference run by PyTorch at the
problem's dtype, once on the target device and once on the CPU with one thread (two of PyTorch's
own implementations, with their own reduction orders); and `got`, the candidate's output. Each
element must satisfy, as in `torch.testing.assert_close`,

    |got - expected| <= atol + rtol * |expected|

with, over the finite elements,

    s       = RMS of `expected` (1 if that is 0): the output's scale
    e_abs   = max |native - expected| where |expected| <= s    PyTorch's error near zero
    e_rel   = max |native - expected| / |expected| where |expected| > s    and on large values
              (each the worst over the natives)
    atol    = min(max(MULTIPLE * e_abs, ATOL_FLOOR[dtype] * s), max(ATOL_CAP[dtype] * s, 2 * e_abs))
    atol    = max(atol, REFERENCE_ROUNDING * m)       m: the largest |input| of the trial
    rtol    = min(max(MULTIPLE * e_rel, RTOL_FLOOR[dtype]),     max(RTOL_CAP[dtype], 2 * e_rel))

That is: MULTIPLE times PyTorch's error, never tighter than the floor, never looser than the cap,
except that a problem on which PyTorch itself is off by more than half the cap (an ill-conditioned
reference) allows twice PyTorch's error, and the comparison says so in `note`: no tolerance may
fail PyTorch's own answer.

The split matters: an absolute error (a matmul's cancellation near zero) and a relative one (an
exp's last bits on large values) are each held to PyTorch's own behaviour, so neither loosens the
other.

MULTIPLE is 8: a kernel that sums in another order, or uses another (correct) formulation, lands
within a few times PyTorch's error; one that computes in a lower precision than asked (half for a
float32 problem, TF32 matmuls, a fast-math exp) lands far beyond it. The caps stop the rule from
ever being looser than 1e-4 (relative, and of the output's scale) for float32.

The floors come from PyTorch's default assert_close pairs (STYLE.md #10), the absolute part scaled
by the output's magnitude so that a softmax over 10^4 classes (values near 1e-4) is held as
tightly as a matmul whose values are near 100. For float32 the relative floor is 1e-5 (PyTorch's
atol, about 80 units in the last place) rather than its rtol of 1.3e-6: a correct kernel whose
threads accumulate sequentially, as GPU kernels do, lands tens of ulps from PyTorch's pairwise
sums on outputs near 1 (a softmax row dominated by one element), and must pass. Half precision
for a float32 problem is off by up to 5e-4 and TF32 by 1e-3: fifty times the floor and more.

The float64 reference is itself rounded: its intermediates carry errors of order 2^-52 times
their magnitude, which the inputs' magnitude sets, and where the output is far smaller than the
intermediates that error is all that is left. GELU written as x * (1 + erf(x / sqrt 2)) / 2 at
x = -9 cancels 1 + erf to exactly 0 in float64 while the true value is -1e-18: a kernel that
computes it through erfc is right and the reference is not, and PyTorch's own implementations,
using the same formula, agree with the reference and calibrate nothing. REFERENCE_ROUNDING * m
(m the largest finite |input|) is the floor that covers the reference's own rounding: far below
float32's resolution for outputs of any ordinary size, it only binds on outputs that are nearly
zero throughout, and an all-zeros answer still fails wherever the reference is not.

Integer and boolean outputs (argmax, masks) must be equal. NaN must meet NaN, and infinities must
match in sign. Without a float64 path (an op with no double kernel) `expected` is PyTorch's own
output and atol sits at its cap; the comparison says so (`reference="native"`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..verdict import Comparison

MULTIPLE = 8.0
# 16 units of float64 roundoff: the floor of the reference's own rounding, per unit of input size
REFERENCE_ROUNDING = 16 * 2.0**-53


@dataclass(frozen=True)
class DtypeTolerance:
    rtol_floor: float
    rtol_cap: float
    atol_floor: float  # times the output's scale
    atol_cap: float  # times the output's scale


TOLERANCES: dict[torch.dtype, DtypeTolerance] = {
    torch.float32: DtypeTolerance(rtol_floor=1e-5, rtol_cap=1e-4, atol_floor=1e-5, atol_cap=1e-4),
    torch.float16: DtypeTolerance(rtol_floor=1e-3, rtol_cap=1e-2, atol_floor=1e-5, atol_cap=1e-2),
    torch.bfloat16: DtypeTolerance(rtol_floor=1.6e-2, rtol_cap=5e-2, atol_floor=1e-5, atol_cap=5e-2),
    torch.float64: DtypeTolerance(rtol_floor=1e-7, rtol_cap=1e-6, atol_floor=1e-7, atol_cap=1e-6),
}

_EXAMPLES = 5


def tolerance_for(dtype: torch.dtype) -> DtypeTolerance:
    if dtype not in TOLERANCES:
        raise ValueError(f"no tolerance is defined for {dtype}; known: {list(TOLERANCES)}")
    return TOLERANCES[dtype]


def output_scale(expected: torch.Tensor) -> float:
    """The RMS of the finite elements of `expected` (1 when there are none, or all are 0)."""
    e = expected.reshape(-1).double()
    finite = torch.isfinite(e)
    count = int(finite.sum())
    if count == 0:
        return 1.0
    rms = float((torch.where(finite, e, 0.0).square().sum() / count).sqrt())
    return rms if rms > 0 else 1.0


@dataclass(frozen=True)
class Calibration:
    atol: float
    rtol: float
    torch_error: float | None  # PyTorch's worst absolute error over its implementations
    note: str | None = None


def _torch_errors(e: torch.Tensor, scale: float, native: torch.Tensor) -> tuple[float, float, float]:
    # Masked maxima rather than boolean gathers: one pass per quantity, the same on any device,
    # and no copies of the selected elements (at a GPU's default sizes those are gigabytes).
    if e.numel() == 0:
        return 0.0, 0.0, 0.0
    t = native.to(e.device).reshape(-1).double()
    both = torch.isfinite(e) & torch.isfinite(t)
    diff = (t - e).abs_().masked_fill_(~both, 0.0)
    magnitude = e.abs()
    large = magnitude > scale
    e_abs = float(diff.masked_fill(large, 0.0).max())
    e_rel = float((diff / magnitude).masked_fill_(~large, 0.0).max())
    return e_abs, e_rel, float(diff.max())


def input_scale(inputs) -> float:
    """The largest finite |element| over a trial's floating tensor inputs (0 without any)."""
    scale = 0.0
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel():
            low, high = torch.aminmax(x.detach())  # no copy of x (inputs reach gigabytes)
            largest = max(-float(low), float(high))
            if not math.isfinite(largest):  # a NaN or an infinity among them: the finite ones
                a = x.detach().abs()
                largest = float(a.masked_fill_(~torch.isfinite(a), 0.0).max())
            scale = max(scale, largest)
    return scale


def calibrate(
    expected: torch.Tensor,
    natives: torch.Tensor | list[torch.Tensor] | None,
    dtype: torch.dtype,
    inputs_max: float = 0.0,
) -> Calibration:
    """The tolerance of one output, by the rule above (`inputs_max`: m, the largest |input|)."""
    if natives is None:
        natives = []
    elif isinstance(natives, torch.Tensor):
        natives = [natives]
    tol = tolerance_for(dtype)
    scale = output_scale(expected)
    if not natives:
        return Calibration(tol.atol_cap * scale, tol.rtol_cap, None, "no float64 reference: held to the caps")
    e = expected.reshape(-1).double()
    errors = [_torch_errors(e, scale, n) for n in natives]
    e_abs = max(x[0] for x in errors)
    e_rel = max(x[1] for x in errors)
    worst = max(x[2] for x in errors)
    atol = min(max(MULTIPLE * e_abs, tol.atol_floor * scale), max(tol.atol_cap * scale, 2 * e_abs))
    atol = max(atol, REFERENCE_ROUNDING * inputs_max)
    rtol = min(max(MULTIPLE * e_rel, tol.rtol_floor), max(tol.rtol_cap, 2 * e_rel))
    note = None
    if 2 * e_abs > tol.atol_cap * scale or 2 * e_rel > tol.rtol_cap:
        note = (
            f"ill-conditioned: PyTorch's own error ({e_abs:.3g} abs, {e_rel:.3g} rel) is beyond half the "
            f"caps, so twice PyTorch's error is allowed"
        )
    return Calibration(atol, rtol, worst, note)


def _unravel(flat_index: int, shape: tuple[int, ...]) -> list[int]:
    index = []
    for dim in reversed(shape):
        index.append(flat_index % dim if dim else 0)
        flat_index = flat_index // dim if dim else 0
    return list(reversed(index))


def _scalar(value: torch.Tensor) -> float | int | bool | str:
    item = value.item()
    if isinstance(item, float) and not math.isfinite(item):
        return str(item)
    return item


def compare(
    output: int,
    got: torch.Tensor,
    expected: torch.Tensor,
    natives: torch.Tensor | list[torch.Tensor] | None,
    dtype: torch.dtype,
    reference: str = "float64",
    calibration: Calibration | None = None,
) -> Comparison:
    """Compare `got` with `expected` (same shape) under the calibrated rule, on `expected`'s device.

    `natives` are PyTorch's own results at the problem's dtype (one or more implementations);
    `dtype` is the output's dtype as the problem runs it (what picks the tolerance pair). A
    `calibration` computed earlier for this `expected` (see `calibrate`) stands in for `natives`:
    the judge calibrates once per reference output and compares every candidate against it.
    """
    if natives is None:
        natives = []
    elif isinstance(natives, torch.Tensor):
        natives = [natives]
    got = got.to(expected.device)
    shape = tuple(got.shape)
    numel = got.numel()
    if not (got.is_floating_point() or got.is_complex()):
        return _compare_exact(output, got, expected, shape, numel)
    if got.is_complex():
        got, expected = torch.view_as_real(got), torch.view_as_real(expected)
        natives = [torch.view_as_real(n) for n in natives]
        dtype = got.dtype
    if calibration is None:
        calibration = calibrate(expected, natives, dtype)
    atol, rtol, torch_error = calibration.atol, calibration.rtol, calibration.torch_error
    g = got.reshape(-1).double()
    e = expected.reshape(-1).double()
    finite = torch.isfinite(g) & torch.isfinite(e)
    all_finite = bool(finite.all())
    diff = (g - e).abs_()
    magnitude = e.abs()
    if not all_finite:
        diff.masked_fill_(~finite, 0.0)
        magnitude.masked_fill_(~finite, 0.0)
    allowed = magnitude.mul(rtol).add_(atol)
    bad = diff > allowed
    special_mismatch = None
    if not all_finite:
        # Non-finite elements pass only where both are the same NaN or infinity.
        same_special = (torch.isnan(g) & torch.isnan(e)) | (g == e)
        special_mismatch = ~finite & ~same_special
        bad |= special_mismatch
    mismatched = int(bad.sum())
    comparison = Comparison(
        output=output,
        passed=mismatched == 0,
        shape=list(shape),
        numel=numel,
        mismatched=mismatched,
        atol=atol,
        rtol=rtol,
        torch_max_abs_error=torch_error,
        reference=reference,
        note=calibration.note,
    )
    if numel == 0:
        return comparison
    worst = int(diff.argmax())
    comparison.max_abs_error = float(diff[worst])
    comparison.max_abs_index = _unravel(worst, shape)
    rel = (diff / magnitude).masked_fill_(magnitude == 0, 0.0)
    worst_rel = int(rel.argmax())
    comparison.max_rel_error = float(rel[worst_rel])
    comparison.max_rel_index = _unravel(worst_rel, shape)
    if special_mismatch is not None and bool(special_mismatch.any()):
        comparison.margin = math.inf
    else:
        comparison.margin = float((diff / allowed).max())
    if mismatched:
        for flat in torch.nonzero(bad).reshape(-1)[:_EXAMPLES].tolist():
            comparison.examples.append(
                {"index": _unravel(flat, shape), "got": _scalar(g[flat]), "expected": _scalar(e[flat])}
            )
    return comparison


def _compare_exact(output, got, expected, shape, numel) -> Comparison:
    bad = got.reshape(-1) != expected.to(device=got.device, dtype=got.dtype).reshape(-1)
    mismatched = int(bad.sum())
    comparison = Comparison(
        output=output,
        passed=mismatched == 0,
        shape=list(shape),
        numel=numel,
        mismatched=mismatched,
        exact=True,
        margin=0.0 if mismatched == 0 else math.inf,
    )
    if mismatched:
        flat_got, flat_expected = got.reshape(-1), expected.reshape(-1)
        first = torch.nonzero(bad).reshape(-1)
        comparison.max_abs_index = _unravel(int(first[0]), shape)
        diff = (flat_got.double() - flat_expected.double()).abs()
        comparison.max_abs_error = float(diff.max())
        for flat in first[:_EXAMPLES].tolist():
            comparison.examples.append(
                {
                    "index": _unravel(flat, shape),
                    "got": _scalar(flat_got[flat]),
                    "expected": _scalar(flat_expected[flat]),
                }
            )
    return comparison
