"""FLOP and byte counting on fake tensors, the roofline, and automatic small sizes."""

import pytest

from kbmetal.problems import ProblemError, auto_small, load_problem
from kbmetal.problems.roofline import DEVICES, Device, estimate
from kbmetal.problems.sizing import ELEMENT_BUDGET, FLOP_BUDGET

MATMUL = """
    import torch
    import torch.nn as nn

    M = 300
    K = 200
    N = 100

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(N))

        def forward(self, a, b):
            return torch.relu(a @ b + self.bias)

    def get_inputs():
        return [torch.randn(M, K), torch.randn(K, N)]

    def get_init_inputs():
        return []
"""


def test_matmul_flops_and_bytes_are_exact(write_problem):
    roof = estimate(load_problem(write_problem(MATMUL)).instantiate())
    m, k, n = 300, 200, 100
    assert roof.trace.matmul_flops == 2 * m * n * k
    assert roof.trace.other_flops == 2 * m * n  # the bias add and the relu, one per element each
    assert roof.trace.input_bytes == 4 * (m * k + k * n)
    assert roof.trace.output_bytes == 4 * m * n
    assert roof.trace.parameter_bytes == 4 * n
    assert roof.bytes == 4 * (m * k + k * n + m * n + n)


def test_dtype_changes_bytes(write_problem):
    problem = load_problem(write_problem(MATMUL))
    assert estimate(problem.instantiate(dtype="float16")).bytes * 2 == estimate(problem.instantiate()).bytes


def test_huge_sizes_cost_nothing_to_count(write_problem):
    # 2**40 elements per input: a real run would need terabytes
    inst = load_problem(write_problem(MATMUL)).instantiate({"M": 1 << 20, "K": 1 << 20, "N": 1 << 20})
    roof = estimate(inst)
    assert roof.trace.matmul_flops == 2 * (1 << 60)
    assert roof.bound("m4max") == "compute"


def test_roofline_time_and_lower_bound(write_problem):
    roof = estimate(load_problem(write_problem(MATMUL)).instantiate())
    device = Device("test", bandwidth=1e9, fp32_flops=1e9)
    assert roof.seconds(device) == pytest.approx(max(roof.bytes, roof.flops) / 1e9)
    assert roof.lower_bound_seconds(device) == pytest.approx(roof.bytes / 1e9)  # bytes only
    assert roof.seconds("m4max") == pytest.approx(
        max(roof.bytes / DEVICES["m4max"].bandwidth, roof.flops / DEVICES["m4max"].fp32_flops)
    )


def test_elementwise_estimates(write_problem):
    source = """
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def forward(self, x):
                return torch.softmax(x, dim=-1).sum(dim=0)

        def get_inputs():
            return [torch.randn(10, 20)]

        def get_init_inputs():
            return []
    """
    roof = estimate(load_problem(write_problem(source)).instantiate())
    assert roof.trace.matmul_flops == 0
    assert roof.trace.other_flops == 5 * 200 + 200  # softmax: 5 per element; the sum reads 200


ATTENTION = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Model(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    def get_inputs():
        return [torch.randn(2, 3, 16, 8) for _ in range(3)]

    def get_init_inputs():
        return []
"""


def test_cpu_attention_is_counted(write_problem):
    roof = estimate(load_problem(write_problem(ATTENTION)).instantiate())
    assert roof.trace.matmul_flops == 4 * 2 * 3 * 16 * 16 * 8  # QK^T and PV


UPSTREAM_LIKE = """
    import torch
    import torch.nn as nn

    batch_size = 128
    in_channels = 3
    out_channels = 64
    groups = 16
    kernel_size = 3
    input_shape = (batch_size, in_channels, 512, 512)

    class Model(nn.Module):
        def __init__(self, cin, cout, k, g):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k)
            self.norm = nn.GroupNorm(g, cout)

        def forward(self, x):
            return self.norm(self.conv(x))

    def get_inputs():
        return [torch.randn(*input_shape)]

    def get_init_inputs():
        return [in_channels, out_channels, kernel_size, groups]
"""


def test_auto_small_reaches_the_budget_and_keeps_structure(write_problem):
    problem = load_problem(write_problem(UPSTREAM_LIKE))
    result = auto_small(problem)
    assert result.within_budget and result.flops <= FLOP_BUDGET and result.elements <= ELEMENT_BUDGET
    sizes = problem.instantiate("auto-small").sizes
    # small literals (channels 3, kernel 3) are what is computed, not how much: untouched
    assert sizes["in_channels"] == 3 and sizes["kernel_size"] == 3
    # the derived tuple follows batch_size, and its own 512s shrink
    assert sizes["input_shape"][0] == sizes["batch_size"] < 128
    assert sizes["input_shape"][2] < 512
    # out_channels stays a multiple of groups (or a halving that broke it was undone)
    assert sizes["out_channels"] % sizes["groups"] == 0
    inst = problem.instantiate("auto-small")
    out = inst.make_model(0)(*inst.make_inputs(0))
    assert out.shape[0] == sizes["batch_size"]


def test_auto_small_moves_tied_constants_together(write_problem):
    # upstream's hinge loss: broadcasting only works while both sizes stay equal
    source = """
        import torch
        import torch.nn as nn

        batch_size = 4096
        input_shape = (4096,)

        class Model(nn.Module):
            def forward(self, p, t):
                return torch.clamp(1 - p * t, min=0).mean()

        def get_inputs():
            return [torch.randn(batch_size, *input_shape), torch.randn(batch_size)]

        def get_init_inputs():
            return []
    """
    problem = load_problem(write_problem(source))
    sizes = problem.instantiate("auto-small").sizes
    assert sizes["batch_size"] == sizes["input_shape"][0] < 4096
    assert auto_small(problem).within_budget


def test_auto_small_says_when_the_file_fixes_its_sizes(write_problem):
    source = """
        import torch
        import torch.nn as nn

        batch_size = 2

        class Model(nn.Module):
            def forward(self, x):
                return x @ x.T

        def get_inputs():
            return [torch.randn(4096, 4096)]

        def get_init_inputs():
            return []
    """
    result = auto_small(load_problem(write_problem(source)))
    assert not result.within_budget
    assert "still over budget" in result.note and "fixes the rest of its sizes" in result.note


def test_auto_small_falls_back_when_forward_cannot_be_traced(write_problem):
    source = """
        import torch
        import torch.nn as nn

        n = 1 << 20

        class Model(nn.Module):
            def forward(self, x):
                return x[x > 0]  # output shape depends on data

        def get_inputs():
            return [torch.randn(n)]

        def get_init_inputs():
            return []
    """
    result = auto_small(load_problem(write_problem(source)))
    assert result.flops is None and result.within_budget
    assert "does not run on fake tensors" in result.note


def test_auto_small_error_when_nothing_builds(write_problem):
    source = """
        import torch
        import torch.nn as nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                raise RuntimeError("needs a GPU")

        def get_inputs():
            return []

        def get_init_inputs():
            return []
    """
    with pytest.raises(ProblemError, match="cannot choose small sizes automatically.*needs a GPU"):
        auto_small(load_problem(write_problem(source)))
