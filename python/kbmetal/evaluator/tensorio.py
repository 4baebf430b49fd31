"""Tensors between the judge and the candidate's process: raw bytes in files, metadata in JSON.

Nothing the candidate's process writes is ever unpickled by the judge: a pickle can run code, and
the judge is what decides the verdict. A tensor travels as `<name>.bin` (its bytes, contiguous)
plus a small JSON record (dtype, shape, device); the reader checks the dtype against a fixed list
and the file's size against the shape before building the tensor.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
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

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


class TransferError(Exception):
    """A record or file from the other side is malformed."""


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


def save(directory: pathlib.Path, name: str, tensor: torch.Tensor) -> dict[str, Any]:
    """Write a tensor's bytes; return its record."""
    if not _NAME.match(name):
        raise TransferError(f"bad tensor file name {name!r}")
    device = tensor.device.type
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    raw = flat.view(torch.uint8) if flat.numel() else torch.empty(0, dtype=torch.uint8)
    path = directory / f"{name}.bin"
    with open(path, "wb") as f:
        f.write(raw.numpy().tobytes())
    return {
        "kind": "tensor",
        "file": name,
        "dtype": dtype_name(tensor.dtype),
        "shape": list(tensor.shape),
        "stride": list(tensor.stride()),
        "device": device,
    }


def load(directory: pathlib.Path, record: dict[str, Any], max_bytes: int | None = None) -> torch.Tensor:
    """Read a tensor written by `save`, checking everything the record claims."""
    if not isinstance(record, dict) or record.get("kind") != "tensor":
        raise TransferError(f"not a tensor record: {record!r}"[:200])
    name, dtype, shape = record.get("file"), record.get("dtype"), record.get("shape")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TransferError(f"bad tensor file name {name!r}"[:200])
    if dtype not in DTYPES:
        raise TransferError(f"unsupported dtype {dtype!r}"[:200])
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise TransferError(f"bad shape {shape!r}"[:200])
    torch_dtype = DTYPES[dtype]
    numel = math.prod(shape)
    nbytes = numel * torch_dtype.itemsize
    if max_bytes is not None and nbytes > max_bytes:
        raise TransferError(f"tensor of {nbytes} bytes is larger than expected ({max_bytes})")
    path = directory / f"{name}.bin"
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise TransferError(f"cannot open {path.name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size != nbytes:
            raise TransferError(f"{path.name} holds {size} bytes; shape {shape} of {dtype} needs {nbytes}")
        data = bytearray(f.read())
    if numel == 0:
        return torch.empty(shape, dtype=torch_dtype)
    return torch.frombuffer(data, dtype=torch_dtype).reshape(shape)


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
