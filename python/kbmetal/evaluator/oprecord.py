"""Which PyTorch ops a forward runs, op by op: the evidence for the "ran the reference" guard.

A `TorchDispatchMode` sees every ATen op that reaches the dispatcher below autograd, after
composite ops decompose (`nn.Linear` shows as `aten::addmm`), so hiding a matmul behind a custom
`nn.Module` or a `torch.ops` call does not hide it. Each op is classified:

- free: views, allocation, copies and fills: what any kernel wrapper does around its launches;
- a heavy family (matmul, conv, softmax, norm, reduction, scan, pool, attention, loss, rnn, sort):
  the work a kernel is supposed to replace;
- elementwise: everything else.

The evaluator records the reference's ops the same way; a candidate that runs a heavy op, or any
compute op the reference itself runs, is doing the reference's work in PyTorch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

_FREE_EXACT = {
    # allocation
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones", "new_full", "scalar_tensor",
    "arange", "linspace", "eye", "lift_fresh", "lift_fresh_copy",
    # copies and fills
    "copy_", "copy", "clone", "contiguous", "_to_copy", "to", "fill_", "zero_", "detach",
    "detach_", "_copy_from", "_copy_from_and_resize", "resize_", "set_", "alias", "_local_scalar_dense",
    "_assert_async", "_assert_scalar", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
    # views and metadata
    "view", "_unsafe_view", "reshape", "_reshape_alias", "expand", "expand_as", "permute",
    "transpose", "t", "squeeze", "unsqueeze", "flatten", "unflatten", "slice", "select",
    "as_strided", "narrow", "split", "split_with_sizes", "chunk", "unbind", "view_as", "movedim",
    "diagonal", "unfold", "view_as_real", "view_as_complex", "_reshape_copy", "index_select_backward",
    "real", "imag", "conj", "_conj", "resolve_conj", "resolve_neg", "_neg_view", "numpy_T", "mT",
    "randn", "rand", "randint", "randperm", "normal_", "uniform_", "random_", "bernoulli_",
}  # fmt: skip

_FAMILIES: dict[str, tuple[str, ...]] = {
    "attention": ("scaled_dot_product_attention",),
    "conv": ("convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_tbc"),
    "matmul": (
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "addbmm",
        "matmul",
        "dot",
        "vdot",
        "mv",
        "addmv",
        "addr",
        "outer",
        "linear",
        "_addmm_activation",
        "einsum",
        "tensordot",
        "chain_matmul",
        "_int_mm",
        "_mixed_mm",
        "mkldnn_linear",
        "kron",
        "cdist",
        "_cdist_forward",
        "bilinear",
        "_trilinear",
    ),
    "softmax": ("_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax", "softmin"),
    "norm": (
        "native_layer_norm",
        "layer_norm",
        "native_batch_norm",
        "_native_batch_norm_legit",
        "_native_batch_norm_legit_no_training",
        "batch_norm",
        "native_group_norm",
        "group_norm",
        "instance_norm",
        "_fused_rms_norm",
        "rms_norm",
        "norm",
        "linalg_vector_norm",
        "renorm",
        "_batch_norm_impl_index",
        "local_response_norm",
        "_weight_norm",
        "normalize",
    ),
    "scan": ("cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "_cummax_helper", "_cummin_helper"),
    "reduction": (
        "sum",
        "mean",
        "amax",
        "amin",
        "max",
        "min",
        "argmax",
        "argmin",
        "prod",
        "var",
        "std",
        "var_mean",
        "std_mean",
        "logsumexp",
        "all",
        "any",
        "nansum",
        "nanmean",
        "median",
        "nanmedian",
        "mode",
        "aminmax",
        "count_nonzero",
    ),
    "pool": (),
    "loss": ("cross_entropy", "nll_loss", "nll_loss2d", "kl_div", "binary_cross_entropy"),
    "rnn": ("lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell"),
    "sort": ("sort", "topk", "kthvalue", "argsort", "msort", "unique", "_unique", "_unique2", "searchsorted"),
}
# Backend variants and whole op families share a stem (`_scaled_dot_product_flash_attention_for_cpu`,
# `cudnn_convolution_relu`, `max_pool2d_with_indices`, `smooth_l1_loss`).
_STEMS: dict[str, tuple[str, ...]] = {
    "attention": ("scaled_dot_product", "flash_attention", "efficient_attention", "_fused_sdp"),
    "conv": ("convolution", "conv_transpose", "conv_depthwise", "slow_conv", "thnn_conv"),
    "norm": ("batch_norm", "layer_norm", "group_norm", "rms_norm"),
    "pool": ("pool", "max_unpool"),
    "loss": ("_loss", "loss_"),
    "rnn": ("_thnn_fused_lstm", "_thnn_fused_gru", "_cudnn_rnn", "mkldnn_rnn", "_lstm", "_gru"),
}

HEAVY_FAMILIES = tuple(_FAMILIES)
_EXACT = {name: family for family, names in _FAMILIES.items() for name in names}


def op_name(func: Any) -> str:
    """The op's base name (`addmm`), without namespace or overload."""
    return func.overloadpacket.__name__


def classify(name: str) -> str:
    """ "free", one of HEAVY_FAMILIES, or "elementwise"."""
    name = name.removeprefix("aten::")
    base = name.rstrip("_")  # in-place variants: relu_ is relu
    if name in _FREE_EXACT or base in _FREE_EXACT:
        return "free"
    if base in _EXACT:
        return _EXACT[base]
    for family, stems in _STEMS.items():
        if any(stem in base for stem in stems):
            return family
    return "elementwise"


@dataclass
class OpStats:
    count: int = 0
    ms: float = 0.0
    family: str = "elementwise"


@dataclass
class OpProfile:
    """Ops of one or more forward calls, by name."""

    ops: dict[str, OpStats] = field(default_factory=dict)

    def add(self, name: str, ms: float) -> None:
        stats = self.ops.get(name)
        if stats is None:
            stats = self.ops[name] = OpStats(family=classify(name))
        stats.count += 1
        stats.ms += ms

    def compute_ops(self) -> dict[str, OpStats]:
        return {name: s for name, s in self.ops.items() if s.family != "free"}

    def compute_ms(self) -> float:
        return sum(s.ms for s in self.compute_ops().values())

    def to_dict(self) -> dict[str, Any]:
        return {name: {"count": s.count, "ms": s.ms, "family": s.family} for name, s in self.ops.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpProfile:
        profile = cls()
        for name, s in (data or {}).items():
            profile.ops[str(name)] = OpStats(
                count=int(s.get("count", 0)), ms=float(s.get("ms", 0.0)), family=classify(str(name))
            )
        return profile


class OpRecorder(TorchDispatchMode):
    """Records every ATen op run inside it. With `timed`, also the host time of each op, which
    is the op's cost on the synchronous CPU and sim backends (and only its launch cost on an
    asynchronous GPU)."""

    def __init__(self, timed: bool = False):
        super().__init__()
        self.profile = OpProfile()
        self._timed = timed
        self._clock = time.perf_counter_ns

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self._timed:
            self.profile.add(op_name(func), 0.0)
            return func(*args, **kwargs)
        start = self._clock()
        try:
            return func(*args, **kwargs)
        finally:
            self.profile.add(op_name(func), (self._clock() - start) / 1e6)


# TorchDispatchMode wraps every subclass's __torch_dispatch__ so that torch._dynamo is imported on
# its first call (a second of start-up in every worker, and the import rebinds torch.manual_seed).
# The recorder never runs under dynamo, so it keeps its plain method.
OpRecorder.__torch_dispatch__ = OpRecorder.__dict__["__torch_dispatch__"].__wrapped__
