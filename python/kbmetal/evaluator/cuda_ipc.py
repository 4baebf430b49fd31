"""CUDA device memory shared by the judge and a candidate's process (CUDA IPC, driver API).

The judge allocates with `cuMemAlloc` itself, outside PyTorch's caching allocator: an IPC handle
exports a whole driver allocation, and one of PyTorch's segments may hold other tensors of the
judge (reference outputs). An allocation of its own holds nothing but what the judge puts in it.
The candidate's process only opens handles the judge gives it; the judge never opens one of the
candidate's, so nothing the candidate frees or remaps can fault the judge.

libcuda is opened with ctypes (it is loaded already wherever PyTorch uses CUDA) and every call
runs with the device's primary context current, the one PyTorch uses. A buffer is seen as a
uint8 tensor through `__cuda_array_interface__`, so PyTorch's own copies move the bytes.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import threading
from typing import Any

CU_IPC_HANDLE_SIZE = 64
CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS = 1


CUDA_ERROR_OUT_OF_MEMORY = 2


class IpcError(Exception):
    """CUDA IPC is not usable here, or not now; the message says what failed."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code

    @property
    def out_of_memory(self) -> bool:
        """The device was full: a passing state, not a reason to give up on CUDA IPC."""
        return self.code == CUDA_ERROR_OUT_OF_MEMORY


class _IpcHandle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_char * CU_IPC_HANDLE_SIZE)]


_CUdeviceptr = ctypes.c_uint64


class _Driver:
    """The few driver entry points the exchange needs."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise IpcError(f"libcuda.so.1 cannot be opened: {exc}") from None
        p = ctypes.POINTER
        self.mem_alloc = self._fn(("cuMemAlloc_v2",), [p(_CUdeviceptr), ctypes.c_size_t])
        self.mem_free = self._fn(("cuMemFree_v2",), [_CUdeviceptr])
        self.get_handle = self._fn(("cuIpcGetMemHandle",), [p(_IpcHandle), _CUdeviceptr])
        self.open_handle = self._fn(
            ("cuIpcOpenMemHandle_v2", "cuIpcOpenMemHandle"), [p(_CUdeviceptr), _IpcHandle, ctypes.c_uint]
        )
        self.close_handle = self._fn(("cuIpcCloseMemHandle",), [_CUdeviceptr])
        self.device_get = self._fn(("cuDeviceGet",), [p(ctypes.c_int), ctypes.c_int])
        self.primary_retain = self._fn(("cuDevicePrimaryCtxRetain",), [p(ctypes.c_void_p), ctypes.c_int])
        self.push = self._fn(("cuCtxPushCurrent_v2", "cuCtxPushCurrent"), [ctypes.c_void_p])
        self.pop = self._fn(("cuCtxPopCurrent_v2", "cuCtxPopCurrent"), [p(ctypes.c_void_p)])
        self._error_string = self._fn(("cuGetErrorString",), [ctypes.c_int, p(ctypes.c_char_p)])
        self._contexts: dict[int, ctypes.c_void_p] = {}
        self._lock = threading.Lock()

    def _fn(self, names: tuple[str, ...], argtypes: list) -> Any:
        for name in names:
            fn = getattr(self._lib, name, None)
            if fn is not None:
                fn.argtypes = argtypes
                fn.restype = ctypes.c_int
                return fn
        raise IpcError(f"libcuda has no {names[0]}")

    def check(self, result: int, what: str) -> None:
        if result != 0:
            text = ctypes.c_char_p()
            self._error_string(result, ctypes.byref(text))
            name = text.value.decode() if text.value else f"error {result}"
            raise IpcError(f"{what} failed: {name}", code=result)

    @contextlib.contextmanager
    def current(self, ordinal: int):
        """The device's primary context current on this thread (retained once, never released)."""
        with self._lock:
            context = self._contexts.get(ordinal)
            if context is None:
                device = ctypes.c_int()
                self.check(self.device_get(ctypes.byref(device), ordinal), "cuDeviceGet")
                context = ctypes.c_void_p()
                self.check(self.primary_retain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
                self._contexts[ordinal] = context
        self.check(self.push(context), "cuCtxPushCurrent")
        try:
            yield
        finally:
            self.pop(ctypes.byref(ctypes.c_void_p()))


_driver: _Driver | None = None
_driver_lock = threading.Lock()


def driver() -> _Driver:
    global _driver
    with _driver_lock:
        if _driver is None:
            _driver = _Driver()
        return _driver


class _ArrayInterface:
    """Bytes at a device address, for `torch.as_tensor` (no copy); keeps its owner alive."""

    def __init__(self, address: int, nbytes: int, owner: Any):
        self.__cuda_array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (address, False),
            "strides": None,
            "version": 2,
        }
        self._owner = owner


def _as_tensor(address: int, nbytes: int, ordinal: int, owner: Any):
    import torch

    return torch.as_tensor(_ArrayInterface(address, nbytes, owner), device=f"cuda:{ordinal}")


class DeviceBuffer:
    """Device memory the judge owns and exports: `handle` opens it in another process."""

    def __init__(self, nbytes: int, ordinal: int):
        self.nbytes = nbytes
        self.ordinal = ordinal
        drv = driver()
        address = _CUdeviceptr()
        handle = _IpcHandle()
        with drv.current(ordinal):
            drv.check(drv.mem_alloc(ctypes.byref(address), nbytes), f"cuMemAlloc of {nbytes} bytes")
            self.address = address.value
            try:
                drv.check(drv.get_handle(ctypes.byref(handle), address), "cuIpcGetMemHandle")
            except IpcError:
                drv.mem_free(address)
                self.address = 0
                raise
        self.handle = base64.b64encode(ctypes.string_at(ctypes.addressof(handle), CU_IPC_HANDLE_SIZE)).decode()

    def tensor(self):
        """The whole buffer as a uint8 CUDA tensor (a view: valid until `free`)."""
        return _as_tensor(self.address, self.nbytes, self.ordinal, self)

    def free(self) -> None:
        """Release the memory. Only once no other process has it open: the judge frees a buffer
        after the candidate's process that opened it has exited."""
        if self.address:
            drv = driver()
            with drv.current(self.ordinal):
                drv.check(drv.mem_free(_CUdeviceptr(self.address)), "cuMemFree")
            self.address = 0


class OpenedBuffer:
    """Another process's `DeviceBuffer`, opened from its handle (in the candidate's process)."""

    def __init__(self, handle: str, nbytes: int, ordinal: int):
        raw = base64.b64decode(handle.encode(), validate=True)
        if len(raw) != CU_IPC_HANDLE_SIZE:
            raise IpcError(f"an IPC handle has {CU_IPC_HANDLE_SIZE} bytes, not {len(raw)}")
        self.nbytes = nbytes
        self.ordinal = ordinal
        drv = driver()
        address = _CUdeviceptr()
        with drv.current(ordinal):
            drv.check(
                drv.open_handle(
                    ctypes.byref(address), _IpcHandle.from_buffer_copy(raw), CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS
                ),
                "cuIpcOpenMemHandle",
            )
        self.address = address.value

    def tensor(self):
        return _as_tensor(self.address, self.nbytes, self.ordinal, self)

    def close(self) -> None:
        if self.address:
            drv = driver()
            with drv.current(self.ordinal):
                drv.close_handle(_CUdeviceptr(self.address))
            self.address = 0
