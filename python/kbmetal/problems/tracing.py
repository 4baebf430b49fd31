"""Run a reference on fake tensors and count what it does, at any sizes, allocating nothing.

Under FakeTensorMode every tensor has a shape, dtype and device but no storage, so a problem at
its default sizes (gigabytes of real tensors) traces in milliseconds. Counting:

- FLOPs of matmuls, convolutions and attention: torch.utils.flop_counter's own formulas (2 * M *
  N * K for a matmul; 2 per output element, input channel of its group and kernel tap for a
  convolution; QK^T plus PV for attention, causal or not).
- Every other op is an estimate of one operation per element: a pointwise op counts the elements
  it writes, a reduction the elements it reads, pooling the elements it writes times its window.
  Softmax and log-softmax count 5 per element (max, subtract, exp, sum, divide), normalisations
  that compute statistics (layer, group, instance, batch in training) 7, batch norm in eval 4.
  Views, copies, concatenation and tensor creation count nothing: they move data, which the byte
  count already charges.
- Bytes: the compulsory traffic of a perfectly fused kernel: every input, every output and every
  parameter and buffer, each read or written once. Intermediates are not counted.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry, sdpa_flop_count

if TYPE_CHECKING:
    from .instance import ProblemInstance

aten = torch.ops.aten

_FREE = {
    aten.clone, aten.copy_, aten._to_copy, aten.empty, aten.empty_like, aten.empty_strided,
    aten.zeros, aten.zeros_like, aten.ones, aten.ones_like, aten.full, aten.full_like,
    aten.fill_, aten.zero_, aten.scalar_tensor, aten.arange, aten.lift_fresh,
    aten.lift_fresh_copy, aten.randn, aten.rand, aten.randint, aten.uniform_, aten.normal_,
    aten.randperm, aten.cat, aten.stack, aten.constant_pad_nd, aten.repeat, aten.flip,
    aten.roll, aten.index_select, aten.gather, aten.index, aten.unsafe_split, aten.split,
    aten.split_with_sizes, aten.unbind, aten.detach, aten._unsafe_view, aten.contiguous,
    aten.tril, aten.triu, aten.embedding, aten.slice_scatter, aten.select_scatter,
    aten.new_empty, aten.new_zeros, aten.new_ones, aten.new_full,
}  # fmt: skip
_PER_ELEMENT = {
    aten._softmax: 5, aten._log_softmax: 5, aten._safe_softmax: 5, aten.logsumexp: 4,
    aten.native_layer_norm: 7, aten.native_group_norm: 7, aten._native_batch_norm_legit: 7,
    aten._native_batch_norm_legit_no_training: 4,
}  # fmt: skip
_POOLS = {
    aten.max_pool1d, aten.max_pool2d, aten.max_pool3d, aten.max_pool2d_with_indices,
    aten.max_pool3d_with_indices, aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d,
}  # fmt: skip


@contextlib.contextmanager
def _quiet_fake_tensors():
    # FakeTensorMode logs every failed meta kernel at error level; a shape error here is an
    # answer (these sizes do not work), which the caller gets as the exception.
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tensors(tree: object) -> list[torch.Tensor]:
    return [x for x in tree_flatten(tree)[0] if isinstance(x, torch.Tensor)]


def _numel(tree: object) -> int:
    return sum(t.numel() for t in _tensors(tree))


def _first_tensor(args: tuple) -> torch.Tensor | None:
    tensors = _tensors(args)
    return tensors[0] if tensors else None


class OpLimitExceeded(Exception):
    """A trace stopped early: the reference runs more ops than the caller cared to count."""


class _CostMode(TorchDispatchMode):
    """Counts FLOPs of every aten op that runs inside it."""

    def __init__(self, op_limit: int | None = None):
        super().__init__()
        self.matmul_flops = 0
        self.other_flops = 0
        self.ops = 0
        self.op_limit = op_limit

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if func.namespace == "prim":  # metadata queries such as prim.device
            return out
        if packet is aten._scaled_dot_product_flash_attention_for_cpu:
            # CPU's fused attention, which torch's registry does not list: same formula.
            q, k, v = args[:3]
            self.matmul_flops += int(sdpa_flop_count(q.shape, k.shape, v.shape))
            self.ops += 1
        elif packet in flop_registry:
            self.matmul_flops += int(flop_registry[packet](*args, **kwargs, out_val=out))
            self.ops += 1
        elif not (func.is_view or packet in _FREE):
            self.other_flops += self._estimate(func, packet, args, out)
            self.ops += 1
        if self.op_limit is not None and self.ops > self.op_limit:
            raise OpLimitExceeded(f"more than {self.op_limit} ops")
        return out

    @staticmethod
    def _estimate(func, packet, args: tuple, out: object) -> int:
        first = _first_tensor(args)
        read = first.numel() if first is not None else 0
        written = _numel(out)
        if packet is aten.native_batch_norm:
            training = bool(args[5]) if len(args) > 5 else True
            return read * (7 if training else 4)
        if packet in _PER_ELEMENT:
            return read * _PER_ELEMENT[packet]
        if packet in _POOLS:
            window = args[1] if len(args) > 1 else 1
            window = math.prod(window) if isinstance(window, (list, tuple)) else int(window)
            outputs = _tensors(out)
            return (outputs[0].numel() if outputs else 0) * window
        if torch.Tag.reduction in func.tags:
            return read
        if torch.Tag.pointwise in func.tags:
            outputs = _tensors(out)
            return outputs[0].numel() if outputs else 0
        return max(written, 0)


@dataclass(frozen=True)
class Trace:
    """What one forward pass of a reference does, counted on fake tensors."""

    matmul_flops: int  # matmul, convolution, attention: torch's flop formulas
    other_flops: int  # the per-element estimate for every other op
    input_bytes: int
    output_bytes: int
    parameter_bytes: int  # parameters and buffers
    elements: int  # elements of inputs, outputs, parameters and buffers
    ops: int  # aten ops that compute (views and copies excluded)

    @property
    def flops(self) -> int:
        return self.matmul_flops + self.other_flops

    @property
    def bytes(self) -> int:
        return self.input_bytes + self.output_bytes + self.parameter_bytes


def _unique(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for t in tensors:
        seen.setdefault(id(t), t)
    return list(seen.values())


def _nbytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _cast(values: list, dtype: torch.dtype) -> list:
    return [
        v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in values
    ]


def fake_inputs(instance: ProblemInstance) -> list:
    """`get_inputs()` on fake tensors: shapes and dtypes with no storage."""
    with _quiet_fake_tensors(), FakeTensorMode(allow_non_fake_inputs=True):
        return _cast(list(instance.module.get_inputs()), instance.torch_dtype)


def _cast_state(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    # Module.to() swaps fake parameters in place (they are a tensor subclass), which fails at
    # random when the fake mode holds a weak reference to one; rebinding them never does.
    for sub in model.modules():
        for table in (sub._parameters, sub._buffers):
            for name, t in table.items():
                if t is not None and t.is_floating_point() and t.dtype != dtype:
                    cast = t.detach().to(dtype)
                    table[name] = torch.nn.Parameter(cast, t.requires_grad) if table is sub._parameters else cast
    return model


def _model_and_inputs(
    instance: ProblemInstance, fake: FakeTensorMode, real_model: bool
) -> tuple[torch.nn.Module, list]:
    module = instance.module
    if real_model:
        # For constructors that read values back (`x.item()` over a linspace): the parameters
        # are real, the inputs and everything forward computes are still fake.
        model = _cast_state(module.Model(*module.get_init_inputs()), instance.torch_dtype)
    with fake:
        if not real_model:
            model = _cast_state(module.Model(*module.get_init_inputs()), instance.torch_dtype)
        inputs = _cast(list(module.get_inputs()), instance.torch_dtype)
    return model, inputs


def _state_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    return _unique([*model.parameters(), *model.buffers()])


def trace(instance: ProblemInstance, *, real_model: bool = False, op_limit: int | None = None) -> Trace:
    """Count one forward pass. Raises what the reference raises, what fake tensors cannot do (ops
    whose output shape depends on data, reading a value back with `.item()`), or OpLimitExceeded.

    `real_model` builds the Model for real (inputs and forward stay fake), for constructors that
    cannot run on fake tensors; it allocates the parameters.
    """
    fake = FakeTensorMode(allow_non_fake_inputs=True)
    with _quiet_fake_tensors():
        model, inputs = _model_and_inputs(instance, fake, real_model)
        with fake, torch.no_grad(), _CostMode(op_limit) as cost:
            output = model(*inputs)
    state = _state_tensors(model)
    ins = _unique(_tensors(inputs))
    outs = [t for t in _unique(_tensors(output)) if all(t is not i for i in ins)]
    return Trace(
        matmul_flops=cost.matmul_flops,
        other_flops=cost.other_flops,
        input_bytes=_nbytes(ins),
        output_bytes=_nbytes(outs),
        parameter_bytes=_nbytes(state),
        elements=sum(t.numel() for t in (*ins, *outs, *state)),
        ops=cost.ops,
    )


def footprint(instance: ProblemInstance, *, real_model: bool = False) -> int:
    """Elements of inputs, parameters and buffers, without running forward: for references that
    cannot run on fake tensors."""
    with _quiet_fake_tensors():
        fake = FakeTensorMode(allow_non_fake_inputs=True)
        model, inputs = _model_and_inputs(instance, fake, real_model)
    return sum(t.numel() for t in (*_unique(_tensors(inputs)), *_state_tensors(model)))
