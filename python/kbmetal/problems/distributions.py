"""Input distributions, each in a variant that respects the input's declared domain.

A kernel that is right only on `torch.rand` inputs is not right. The evaluator draws trial inputs
from several distributions; each is defined per domain, so an input declared "positive" (fed to a
log, say) never receives a negative number:

| distribution  | real                      | positive          | unit (0..1)                | probability (rows sum to 1) | nonzero                    |
| ------------- | ------------------------- | ----------------- | -------------------------- | --------------------------- | -------------------------- |
| normal        | N(0, 1)                   | abs N(0, 1) + 1e-3| sigmoid N(0, 1)            | softmax N(0, 1)             | N(0, 1) kept >= 0.05 from 0|
| offset_scaled | m + s N(0, 1)             | m + s abs N(0, 1) | m + s N(0, 1), in [0, 1]   | softmax s N(0, 1): flat rows| m + s N(0, 1), m far from 0|
| heavy_tailed  | Student-t, 3 dof          | abs t + 1e-3      | sigmoid 3t: piles at 0, 1  | softmax 4t: peaked rows     | t kept >= 0.05 from 0      |

`offset_scaled` draws per tensor s in [0.1, 1] (log-uniform) and |m| in [4, 16] (for "unit": m in
[0.2, 0.8], s in [0.01, 0.1]), so |m| / s is 4 to 160: this is what catches one-pass variances
and sums that lose the small part of large numbers. Student-t with 3 degrees of freedom has
finite variance but a few elements tens of times larger than the rest, which catches kernels that
assume a range (a fixed max in a softmax, a lookup table for exp).

"native" is the problem's own `get_inputs()`. Integer and boolean tensors, and inputs declared
"fixed", always come from `get_inputs()`.
"""

from __future__ import annotations

import zlib

import torch

NATIVE = "native"
DISTRIBUTIONS = (NATIVE, "normal", "offset_scaled", "heavy_tailed")
# Inputs in these domains are drawn anew for every distribution but "native".
REDISTRIBUTABLE = ("real", "positive", "unit", "probability", "nonzero")

_STUDENT_T_DOF = 3
_NONZERO_GAP = 0.05
_POSITIVE_FLOOR = 1e-3


def generator_for(seed: int, input_index: int, distribution: str) -> torch.Generator:
    """A CPU generator fixed by (seed, input, distribution), independent of the global RNG."""
    salt = zlib.crc32(distribution.encode())
    mixed = (seed * 0x9E3779B1 + input_index * 0x85EBCA77 + salt) % (1 << 63)
    return torch.Generator().manual_seed(mixed)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=gen).item()


def _sign(gen: torch.Generator) -> float:
    return 1.0 if torch.rand((), generator=gen).item() < 0.5 else -1.0


def _student_t(shape: torch.Size, gen: torch.Generator) -> torch.Tensor:
    # t = z / sqrt(chi2 / dof). torch's Gamma sampler takes no generator, so the chi-square is
    # built as a sum of dof squared normals.
    z = torch.randn(shape, generator=gen)
    chi2 = sum(torch.randn(shape, generator=gen) ** 2 for _ in range(_STUDENT_T_DOF))
    return z / torch.sqrt(chi2 / _STUDENT_T_DOF).clamp_min(1e-6)


def _away_from_zero(x: torch.Tensor) -> torch.Tensor:
    sign = torch.where(x >= 0, 1.0, -1.0)
    return torch.where(x.abs() < _NONZERO_GAP, sign * _NONZERO_GAP, x)


def _last_dim_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1) if x.dim() > 0 else torch.ones_like(x)


def draw(distribution: str, domain: str, like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A float32 CPU tensor shaped like `like`, from `distribution` in its `domain` variant."""
    shape = like.shape
    if distribution == "normal":
        z = torch.randn(shape, generator=gen)
        return {
            "real": lambda: z,
            "positive": lambda: z.abs() + _POSITIVE_FLOOR,
            "unit": lambda: torch.sigmoid(z),
            "probability": lambda: _last_dim_softmax(z),
            "nonzero": lambda: _away_from_zero(z),
        }[domain]()
    if distribution == "offset_scaled":
        z = torch.randn(shape, generator=gen)
        if domain == "unit":
            m, s = _uniform(gen, 0.2, 0.8), 10 ** _uniform(gen, -2, -1)
            return (m + s * z).clamp(0.0, 1.0)
        s = 10 ** _uniform(gen, -1, 0)
        m = _uniform(gen, 4.0, 16.0)
        return {
            "real": lambda: _sign(gen) * m + s * z,
            "positive": lambda: m + s * z.abs(),
            "probability": lambda: _last_dim_softmax(s * z),
            "nonzero": lambda: _away_from_zero(_sign(gen) * m + s * z),
        }[domain]()
    if distribution == "heavy_tailed":
        t = _student_t(shape, gen)
        return {
            "real": lambda: t,
            "positive": lambda: t.abs() + _POSITIVE_FLOOR,
            "unit": lambda: torch.sigmoid(3.0 * t),
            "probability": lambda: _last_dim_softmax(4.0 * t),
            "nonzero": lambda: _away_from_zero(t),
        }[domain]()
    raise ValueError(f"unknown input distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}")

