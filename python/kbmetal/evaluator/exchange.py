"""Tensors between the judge and the candidate's process: one shared region per worker.

Each request that carries tensors is laid out by the judge in the region: where each input is,
and a slot for each output and each input-after-forward, sized from the reference's outputs
(and the inputs), so the worker can never write past what the judge will read. Only the judge
decides offsets; the worker's replies say what it stored (dtype, shape, device), never where.
Nothing is pickled; records are JSON (tensorio), and the judge checks each against what it
expects before reading a byte.

Two kinds of region, both owned by the judge:

- host: an unnamed in-memory file (memfd; a deleted temporary file where there is none), passed
  to the worker when it starts. The worker maps it; the judge only ever reads and writes it with
  pread/pwrite, so nothing the worker does to the file (truncating it) can fault the judge. Used
  by the sim and Metal, and by CUDA wherever CUDA IPC is not usable.
- cuda: device memory the judge allocates outside PyTorch's allocator and exports with a CUDA IPC
  handle (cuda_ipc.py); tensors move device to device, so at a GPU's default sizes (half a
  gigabyte per tensor) a trial's traffic costs milliseconds instead of seconds. Attaching one
  starts with a round trip of a random pattern; any failure there and the judge uses a host region.

Either way the judge keeps its own copies: what it reads out of the region is copied into memory
of its own before it is compared.
"""

from __future__ import annotations

import math
import mmap
import os
import secrets
import tempfile
from dataclasses import dataclass
from typing import Any

import torch

from . import tensorio

ALIGN = 256  # slot alignment: any dtype's view, and full-speed device copies


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Slot:
    offset: int
    nbytes: int

    def to_json(self) -> list[int]:
        return [self.offset, self.nbytes]


class Layout:
    """Slots handed out one after another in a region."""

    def __init__(self) -> None:
        self.size = 0

    def take(self, nbytes: int) -> Slot:
        slot = Slot(_aligned(self.size), nbytes)
        self.size = slot.offset + nbytes
        return slot


def tensor_bytes(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor's elements as contiguous uint8 (a view when it already is contiguous)."""
    flat = tensor.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8) if flat.numel() else torch.empty(0, dtype=torch.uint8, device=flat.device)


def nbytes_of(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _from_bytes(raw: torch.Tensor, dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    if raw.numel() == 0:
        return torch.empty(shape, dtype=dtype, device=raw.device)
    return raw.view(dtype).reshape(shape)


# -- the judge's side ---------------------------------------------------------------------------


class HostRegion:
    """A memfd (or a deleted temporary file) that the worker maps and the judge reads with pread."""

    kind = "host"

    def __init__(self, folder: str | os.PathLike | None = None):
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("kbmetal-exchange", os.MFD_CLOEXEC)
        else:
            handle, path = tempfile.mkstemp(prefix="exchange-", dir=folder)
            os.unlink(path)
            self.fd = handle
        self.size = 0

    def ensure(self, size: int) -> bool:
        """Grow to `size` bytes; True when the worker must learn the new size."""
        if size <= self.size:
            return False
        os.ftruncate(self.fd, size)
        self.size = size
        return True

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": self.size}

    def write(self, slot: Slot, tensor: torch.Tensor) -> None:
        raw = tensor_bytes(tensor.to("cpu"))
        view = memoryview(raw.numpy()).cast("B") if raw.numel() else memoryview(b"")
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], slot.offset + done)

    def read(self, slot: Slot, dtype: torch.dtype, shape: list[int], device: str | torch.device) -> torch.Tensor:
        raw = torch.empty(slot.nbytes, dtype=torch.uint8)
        view = memoryview(raw.numpy()).cast("B") if slot.nbytes else memoryview(bytearray())
        done = 0
        while done < slot.nbytes:
            got = os.preadv(self.fd, [view[done:]], slot.offset + done)
            if got <= 0:  # the worker shrank the file: nothing more to read
                raise tensorio.TransferError(f"the exchange region ends {slot.nbytes - done} bytes early")
            done += got
        return _from_bytes(raw, dtype, shape).to(device)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CudaRegion:
    """Device memory of the judge's, opened by the worker through a CUDA IPC handle."""

    kind = "cuda"

    def __init__(self, size: int, ordinal: int):
        from .cuda_ipc import DeviceBuffer

        self.size = size
        self.buffer = DeviceBuffer(size, ordinal)
        self.view = self.buffer.tensor()
        self.view.zero_()  # what the allocation held before is the judge's business only
        torch.cuda.synchronize()

    def ensure(self, size: int) -> bool:
        return False  # sized once by the judge; a larger request gets a new region

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "size": self.size, "handle": self.buffer.handle}

    def write(self, slot: Slot, tensor: torch.Tensor) -> None:
        raw = tensor_bytes(tensor)
        self.view[slot.offset : slot.offset + raw.numel()].copy_(raw)

    def read(self, slot: Slot, dtype: torch.dtype, shape: list[int], device: str | torch.device) -> torch.Tensor:
        raw = self.view[slot.offset : slot.offset + slot.nbytes].clone()
        return _from_bytes(raw, dtype, shape).to(device)

    def flush(self) -> None:
        """Make the judge's writes visible to the worker before it is told to read them."""
        torch.cuda.synchronize()

    def close(self) -> None:
        """Free the memory: only after the worker that opened it has exited."""
        if self.buffer is not None:
            self.view = None
            torch.cuda.synchronize()
            self.buffer.free()
            self.buffer = None


def probe_pattern() -> bytes:
    return secrets.token_bytes(ALIGN)


def complement(data: bytes) -> bytes:
    return bytes(255 - b for b in data)


# -- the worker's side --------------------------------------------------------------------------


class WorkerRegion:
    """The worker's mapping of the judge's region."""

    def __init__(self, host_fd: int | None):
        self.host_fd = host_fd
        self.kind: str | None = None
        self.size = 0
        self.view: torch.Tensor | None = None
        self._mapping: Any = None

    def attach(self, description: dict[str, Any], device: str) -> None:
        kind, size = description.get("kind"), int(description.get("size") or 0)
        if kind == "host":
            if self.host_fd is None:
                raise tensorio.TransferError("no host region was passed to this worker")
            self._release()
            self._mapping = mmap.mmap(self.host_fd, size) if size else None
            empty = torch.empty(0, dtype=torch.uint8)
            self.view = torch.frombuffer(self._mapping, dtype=torch.uint8) if size else empty
        elif kind == "cuda":
            from .cuda_ipc import OpenedBuffer

            ordinal = torch.device(device).index
            ordinal = torch.cuda.current_device() if ordinal is None else ordinal
            opened = OpenedBuffer(str(description.get("handle")), size, ordinal)
            self._release()
            self._mapping = opened
            self.view = opened.tensor()
        else:
            raise tensorio.TransferError(f"unknown exchange region {kind!r}")
        self.kind, self.size = kind, size

    def _release(self) -> None:
        self.view = None
        mapping, self._mapping = self._mapping, None
        if mapping is not None and self.kind == "cuda":
            mapping.close()
        # a host mapping is closed by the garbage collector once no tensor views it

    def _bytes(self, offset: int, nbytes: int) -> torch.Tensor:
        if self.view is None or offset < 0 or nbytes < 0 or offset + nbytes > self.size:
            raise tensorio.TransferError(f"bytes {offset}..{offset + nbytes} are outside the exchange region")
        return self.view[offset : offset + nbytes]

    def peek(self, offset: int, nbytes: int) -> bytes:
        return bytes(self._bytes(offset, nbytes).cpu().numpy().tobytes())

    def poke(self, offset: int, data: bytes) -> None:
        self._bytes(offset, len(data)).copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))

    def tensor(self, record: dict[str, Any]) -> torch.Tensor:
        """A view of an input the judge placed (read it; copy it before handing it out)."""
        dtype, shape = tensorio.check_record(record)
        nbytes = math.prod(shape) * dtype.itemsize
        if record.get("nbytes") != nbytes:
            raise tensorio.TransferError(f"record of {record.get('nbytes')} bytes for {shape} of {dtype}")
        return _from_bytes(self._bytes(int(record["offset"]), nbytes), dtype, shape)

    def store(self, slot: list[int], tensor: torch.Tensor) -> bool:
        """Copy `tensor` into the judge's slot; False when it does not fit (wrong shape or dtype:
        the judge rejects it from the record alone)."""
        offset, capacity = int(slot[0]), int(slot[1])
        n = nbytes_of(tensor)
        if n > capacity:
            return False
        if n:
            self._bytes(offset, n).copy_(tensor_bytes(tensor))
        return True
