"""Tensor records between the judge and the candidate's process: metadata in JSON.

Nothing the candidate's process writes is ever unpickled by the judge: a pickle can run code, and
the judge is what decides the verdict. A tensor's bytes travel through the exchange region
(exchange.py); its record here says what it is (dtype, shape, stride, device), and the reader
checks the dtype against a fixed list and the shape against what it expects before reading.
"""

from __future__ import annotations

import math
from typing import Any

import torch

DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16,
        torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
        torch.complex64, torch.complex128,
    )
}  # fmt: skip


class TransferError(Exception):
    """A record, or the bytes it describes, from the other side is malformed."""


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def describe(value: Any) -> dict[str, Any]:
    """The JSON record of a non-tensor value (what a forward may return besides tensors)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return {
            "kind": "value",
            "value": value if not isinstance(value, float) or math.isfinite(value) else str(value),
        }
    return {"kind": "object", "type": type(value).__name__}


def record(tensor: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """The JSON record of a tensor: what it is, never where its bytes are (the judge decides)."""
    return {
        "kind": "tensor",
        "dtype": dtype_name(tensor.dtype),
        "shape": list(tensor.shape),
        "stride": list(tensor.stride()),
        "device": tensor.device.type,
        **extra,
    }


def check_record(rec: Any) -> tuple[torch.dtype, list[int]]:
    """The dtype and shape a record claims, checked against the fixed list of dtypes."""
    if not isinstance(rec, dict) or rec.get("kind") != "tensor":
        raise TransferError(f"not a tensor record: {rec!r}"[:200])
    dtype, shape = rec.get("dtype"), rec.get("shape")
    if dtype not in DTYPES:
        raise TransferError(f"unsupported dtype {dtype!r}"[:200])
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise TransferError(f"bad shape {shape!r}"[:200])
    return DTYPES[dtype], shape


def write_into(target: torch.Tensor, values: torch.Tensor, *, quiet: bool) -> None:
    """Overwrite `target` in place with `values`: same object, same address, new contents.

    With `quiet`, the write goes through a second tensor over the same storage, which has a
    version counter of its own: `target._version` does not move, so a cache keyed on
    (pointer, version) cannot tell the contents changed.
    """
    values = values.to(device=target.device, dtype=target.dtype)
    with torch.no_grad():
        if quiet:
            alias = torch.empty(0, dtype=target.dtype, device=target.device)
            alias.set_(target.untyped_storage(), target.storage_offset(), target.size(), target.stride())
            alias.copy_(values)
        else:
            target.copy_(values)
