"""The tolerance rule: a fixed multiple of PyTorch's own error, with per-dtype floors and caps."""

import math

import pytest
import torch
from kbmetal.evaluator import tolerance


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(1234)


def _matmul_case(seed=0, n=64, k=512):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, k, generator=g)
    b = torch.randn(k, n, generator=g)
    exact = a.double() @ b.double()
    native = a @ b
    return a, b, exact, native


def test_pytorch_itself_passes_with_margin_below_one_eighth():
    a, b, exact, native = _matmul_case()
    c = tolerance.compare(0, native, exact, native, torch.float32)
    assert c.passed and c.mismatched == 0
    # PyTorch's own output uses at most 1/MULTIPLE of the allowance (when atol is calibrated)
    assert c.margin <= 1.0 / tolerance.MULTIPLE + 1e-9


def test_other_summation_order_passes():
    a, b, exact, native = _matmul_case()
    # a naive sequential dot product in float32: a different, still float32-correct order
    sequential = torch.zeros(a.shape[0], b.shape[1])
    for kk in range(a.shape[1]):
        sequential += a[:, kk : kk + 1] * b[kk : kk + 1, :]
    c = tolerance.compare(0, sequential, exact, native, torch.float32)
    assert c.passed, c.describe()


def test_half_precision_for_a_float32_problem_fails():
    a, b, exact, native = _matmul_case()
    half = (a.half() @ b.half()).float() if hasattr(torch, "half") else None
    c = tolerance.compare(0, half, exact, native, torch.float32)
    assert not c.passed
    assert c.mismatched > 0 and c.margin > 1


def test_bfloat16_rounding_of_an_elementwise_result_fails():
    x = torch.randn(1000)
    exact = torch.tanh(x.double())
    native = torch.tanh(x)
    lowered = torch.tanh(x).bfloat16().float()
    assert tolerance.compare(0, native, exact, native, torch.float32).passed
    assert not tolerance.compare(0, lowered, exact, native, torch.float32).passed


def test_tolerance_is_the_multiple_of_torch_error_within_floor_and_cap():
    x = torch.randn(4096, dtype=torch.float64)
    scale = tolerance.output_scale(x)
    tol = tolerance.TOLERANCES[torch.float32]
    small = x.abs() <= scale
    # PyTorch's own rounding: errors far below the floors, so the floors apply
    cal = tolerance.calibrate(x, x.float(), torch.float32)
    assert cal.torch_error == pytest.approx(float((x.float().double() - x).abs().max()))
    e_abs = float((x.float().double() - x).abs()[small].max())
    assert cal.atol == pytest.approx(max(tolerance.MULTIPLE * e_abs, tol.atol_floor * scale))
    assert cal.rtol == pytest.approx(tol.rtol_floor) and cal.note is None
    # PyTorch off by 3e-6 relative on large values: rtol is MULTIPLE times that
    bumped = torch.where(small, x, x * (1 + 3e-6)).float()
    assert tolerance.calibrate(x, bumped, torch.float32).rtol == pytest.approx(
        tolerance.MULTIPLE * 3e-6, rel=0.05
    )
    # the worst of several PyTorch implementations counts
    assert tolerance.calibrate(x, [x.float(), bumped], torch.float32).rtol == pytest.approx(
        tolerance.MULTIPLE * 3e-6, rel=0.05
    )
    # PyTorch off by 3e-5: MULTIPLE times that is past the cap, so the cap applies
    cal = tolerance.calibrate(x, torch.where(small, x, x * (1 + 3e-5)).float(), torch.float32)
    assert cal.rtol == pytest.approx(tol.rtol_cap) and cal.note is None
    assert tol.atol_cap <= 1e-4 and tol.rtol_cap <= 1e-4


def test_an_ill_conditioned_reference_never_fails_pytorch_itself():
    # PyTorch itself is off by 1e-3 relative: beyond the cap; twice its error is allowed, with a note
    x = torch.randn(4096, dtype=torch.float64) + 3.0
    native = (x * (1 + 1e-3)).float()
    cal = tolerance.calibrate(x, native, torch.float32)
    assert cal.rtol == pytest.approx(2e-3, rel=0.05) and "ill-conditioned" in cal.note
    c = tolerance.compare(0, native, x, native, torch.float32)
    assert c.passed and c.note
    assert not tolerance.compare(0, (x * (1 + 3e-3)).float(), x, native, torch.float32).passed


def test_scale_aware_floor_is_strict_for_small_outputs():
    # softmax over 20000 classes: values near 5e-5; a 0.2% error must fail although it is below
    # PyTorch's default absolute tolerance of 1e-5
    x = torch.randn(4, 20000)
    exact = torch.softmax(x.double(), -1)
    native = torch.softmax(x, -1)
    off = native * 1.002
    assert float((off - native).abs().max()) < 1e-5
    assert not tolerance.compare(0, off, exact, native, torch.float32).passed
    assert tolerance.compare(0, native, exact, native, torch.float32).passed


def test_report_names_count_share_worst_error_and_index():
    exact = torch.zeros(3, 4, dtype=torch.float64) + 1.0
    native = exact.float()
    got = native.clone()
    got[1, 2] = 2.0
    got[2, 3] = 1.5
    c = tolerance.compare(0, got, exact, native, torch.float32)
    assert not c.passed
    assert c.mismatched == 2 and c.numel == 12
    assert c.mismatch_share == pytest.approx(2 / 12)
    assert c.max_abs_error == pytest.approx(1.0) and c.max_abs_index == [1, 2]
    assert c.max_rel_error == pytest.approx(1.0) and c.max_rel_index == [1, 2]
    assert c.examples[0]["index"] == [1, 2] and c.examples[0]["got"] == 2.0
    text = c.describe()
    assert "mismatched elements: 2 / 12" in text and "(1, 2)" in text


def test_nan_must_meet_nan_and_infinities_must_match():
    exact = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")], dtype=torch.float64)
    native = exact.float()
    assert tolerance.compare(0, native, exact, native, torch.float32).passed
    wrong = native.clone()
    wrong[1] = 0.0
    c = tolerance.compare(0, wrong, exact, native, torch.float32)
    assert not c.passed and math.isinf(c.margin)
    wrong = native.clone()
    wrong[2] = -float("inf")
    assert not tolerance.compare(0, wrong, exact, native, torch.float32).passed
    # a NaN where a number is expected fails (a no-op kernel on poisoned memory)
    got = torch.full((4,), float("nan"))
    assert not tolerance.compare(
        0, got, torch.ones(4, dtype=torch.float64), torch.ones(4), torch.float32
    ).passed


def test_integer_outputs_need_equality():
    expected = torch.tensor([3, 1, 2])
    assert tolerance.compare(0, expected.clone(), expected, expected, torch.int64).passed
    c = tolerance.compare(0, torch.tensor([3, 2, 2]), expected, expected, torch.int64)
    assert not c.passed and c.exact and c.mismatched == 1 and c.max_abs_index == [1]


def test_float16_pair():
    x = torch.randn(2048) * 2
    exact = torch.exp(x.half().double())
    native = torch.exp(x.half())
    assert tolerance.compare(0, native, exact, native, torch.float16).passed
    # computed in bfloat16 (a lower precision than asked): inputs and result lose bits
    lowered = torch.exp(x.half().bfloat16()).half()
    assert not tolerance.compare(0, lowered, exact, native, torch.float16).passed


def test_native_reference_when_no_float64_path():
    x = torch.randn(100)
    c = tolerance.compare(0, x.clone(), x, None, torch.float32, reference="native")
    assert c.passed and c.reference == "native" and c.torch_max_abs_error is None


def _gelu_tail_trial(offset: float, spread: float):
    """GELU on x = offset + spread N(0, 1): the float64 reference by PyTorch's erf formula, and a kernel
    that computes the same function through erfc (accurate where 1 + erf cancels)."""
    gen = torch.Generator().manual_seed(7)
    x = (offset + spread * torch.randn(4096, generator=gen)).float()
    expected = torch.nn.functional.gelu(x.double())
    natives = [torch.nn.functional.gelu(x)]
    accurate = (0.5 * x.double() * torch.special.erfc(-x.double() / math.sqrt(2))).float()
    return x, expected, natives, accurate


def test_a_kernel_more_accurate_than_the_float64_reference_passes_in_its_cancelling_tail():
    # an offset_scaled trial that once failed a correct bundled solution (L1-014) on the sim
    x, expected, natives, accurate = _gelu_tail_trial(-9.0, 0.2)
    assert (expected == 0).float().mean() > 0.5  # the reference's formula cancels to zero there
    assert (accurate != 0).all()  # the true values are not zero
    without_floor = tolerance.calibrate(expected, natives, torch.float32)
    assert not tolerance.compare(0, accurate, expected, natives, torch.float32, calibration=without_floor).passed
    calibration = tolerance.calibrate(expected, natives, torch.float32, tolerance.input_scale([x]))
    c = tolerance.compare(0, accurate, expected, natives, torch.float32, calibration=calibration)
    assert c.passed, c


def test_the_reference_rounding_floor_still_fails_zeros_and_half_precision():
    x, expected, natives, _ = _gelu_tail_trial(0.0, 1.0)
    calibration = tolerance.calibrate(expected, natives, torch.float32, tolerance.input_scale([x]))
    assert calibration.atol == tolerance.calibrate(expected, natives, torch.float32).atol  # not the floor
    zeros = torch.zeros_like(x)
    assert not tolerance.compare(0, zeros, expected, natives, torch.float32, calibration=calibration).passed
    half = torch.nn.functional.gelu(x.half()).float()
    assert not tolerance.compare(0, half, expected, natives, torch.float32, calibration=calibration).passed


def test_input_scale_is_the_largest_finite_floating_input():
    inf, nan = float("inf"), float("nan")
    inputs = [torch.tensor([-3.0, 2.0]), torch.tensor([1.0, nan, -5.0]), torch.tensor([inf, 7.0]),
              torch.tensor([1, 90]), 4.0]
    assert tolerance.input_scale(inputs) == 7.0
    assert tolerance.input_scale([torch.empty(0), 3]) == 0.0
