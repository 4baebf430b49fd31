"""Input distributions: reproducible, domain-respecting, and leaving integer and fixed inputs be."""

import pytest
import torch

from kbmetal.problems import DISTRIBUTIONS, load_problem

DOMAINS_SOURCE = """
    import torch
    import torch.nn as nn

    N = 64
    D = 96

    class Model(nn.Module):
        def forward(self, real, positive, unit, probability, nonzero, fixed, labels, mask):
            return real + positive.log() + unit + probability + 1 / nonzero + fixed + labels + mask

    def get_inputs():
        return [
            torch.randn(N, D),
            torch.rand(N, D) + 0.5,
            torch.rand(N, D),
            torch.softmax(torch.randn(N, D), dim=-1),
            torch.randn(N, D).sign() * (1 + torch.rand(N, D)),
            torch.full((N, D), 3.0),
            torch.randint(0, 10, (N, D)),
            torch.rand(N, D) > 0.5,
        ]

    def get_init_inputs():
        return []

    INPUT_DOMAINS = {1: "positive", 2: "unit", 3: "probability", 4: "nonzero", 5: "fixed"}
"""


@pytest.fixture
def instance(write_problem):
    return load_problem(write_problem(DOMAINS_SOURCE)).instantiate()


def test_native_is_get_inputs_under_the_seed(instance):
    torch.manual_seed(5)
    expected = instance.module.get_inputs()
    got = instance.make_inputs(5)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_seeds_reproduce_and_differ(instance, distribution):
    a = instance.make_inputs(3, distribution)
    b = instance.make_inputs(3, distribution)
    c = instance.make_inputs(4, distribution)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("distribution", DISTRIBUTIONS[1:])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_domain_is_respected(instance, distribution, seed):
    native = instance.make_inputs(seed)
    real, positive, unit, probability, nonzero, fixed, labels, mask = instance.make_inputs(seed, distribution)
    assert not torch.equal(real, native[0])  # floating "real" inputs are redrawn
    assert bool((positive > 0).all())
    assert bool(((unit >= 0) & (unit <= 1)).all())
    assert bool((probability >= 0).all())
    torch.testing.assert_close(probability.sum(-1), torch.ones(probability.shape[0]))
    assert bool((nonzero.abs() >= 0.05).all())
    # fixed, integer and boolean inputs are always what get_inputs() gave
    assert torch.equal(fixed, native[5]) and torch.equal(labels, native[6]) and torch.equal(mask, native[7])
    assert all(x.shape == y.shape for x, y in zip(native, instance.make_inputs(seed, distribution)))


def test_distributions_have_their_shape(write_problem):
    source = DOMAINS_SOURCE.replace("N = 64", "N = 512").replace("D = 96", "D = 512")
    inst = load_problem(write_problem(source)).instantiate()
    normal = inst.make_inputs(0, "normal")[0]
    assert abs(float(normal.mean())) < 0.02 and abs(float(normal.std()) - 1) < 0.02
    shifted = inst.make_inputs(0, "offset_scaled")[0]
    assert float(shifted.mean().abs()) >= 4 * float(shifted.std())  # |m| large relative to s
    heavy = inst.make_inputs(0, "heavy_tailed")[0]
    kurtosis = lambda t: float(((t - t.mean()) ** 4).mean() / t.var() ** 2)  # noqa: E731
    assert kurtosis(heavy) > 2 * kurtosis(normal)  # far heavier tails than a normal's 3


def test_dtype_casts_floating_inputs_only(write_problem):
    inst = load_problem(write_problem(DOMAINS_SOURCE)).instantiate(dtype="float16")
    values = inst.make_inputs(0, "heavy_tailed")
    assert [v.dtype for v in values[:6]] == [torch.float16] * 6
    assert values[6].dtype == torch.int64 and values[7].dtype == torch.bool


def test_distributions_list(write_problem, instance):
    assert instance.distributions() == list(DISTRIBUTIONS)
    only_fixed = DOMAINS_SOURCE.replace(
        'INPUT_DOMAINS = {1: "positive", 2: "unit", 3: "probability", 4: "nonzero", 5: "fixed"}',
        "INPUT_DOMAINS = {i: 'fixed' for i in range(6)}",
    )
    assert load_problem(write_problem(only_fixed, name="002_fixed.py")).instantiate().distributions() == ["native"]


def test_unknown_distribution_is_named(instance):
    with pytest.raises(ValueError, match="unknown input distribution 'uniform'; known: native, normal"):
        instance.make_inputs(0, "uniform")
