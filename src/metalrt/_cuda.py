"""The CUDA driver: metalrt on NVIDIA GPUs, through NVRTC and the driver API (csrc/cuda).

Both libraries are opened at run time (dlopen), so metalrt installs anywhere and a machine
without a driver gets a clear BackendUnavailable. Kernels are compiled for the device's own
architecture (a cubin; PTX for a GPU newer than the NVRTC), loaded into the device's primary
context (the one PyTorch uses), and launched on PyTorch's current stream, so they are ordered
with PyTorch's own work without any synchronisation.

``build()`` is: parse the signatures (core's CUDA parser) -> disk-cache key -> on a miss, NVRTC
and store the image with its lowered names -> load. A new process with a warm cache never runs
NVRTC.

Launch semantics worth knowing:
- ``threads=`` rounds the grid up to whole blocks, so the last block may have threads past the
  end: the kernel must check its bounds (``if (i < n)``), as every CUDA kernel does.
- ``threadgroup_memory={0: nbytes}`` is the kernel's dynamic shared memory (``extern
  __shared__``); above 48 KiB the kernel is opted in automatically, up to the device's limit.

Environment:
  METALRT_CUDA_DEVICE   the device ordinal (default 0)
  METALRT_NVRTC         a libnvrtc.so to use instead of searching for one
  CUDA_HOME, CUDA_PATH  a toolkit to take NVRTC and the CUDA headers (cuda_fp16.h...) from
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from . import _C
from .cache import DiskCache
from .device import Device
from .errors import BackendUnavailable, CompileError

__all__ = ["CudaDriver", "nvrtc_options", "wheel_lib_dirs", "header_dirs"]

# Bump when what this driver stores changes meaning (it enters every cache key).
BACKEND_FORMAT = 1

_MATH_FLAGS = {
    "safe": (),  # IEEE division and square root, denormals kept; NVRTC's defaults
    "fast": ("--use_fast_math",),
    "relaxed": ("--ftz=true", "--prec-div=false", "--prec-sqrt=false"),  # no approximate transcendentals
}


def _newest_first(folder: Path) -> tuple:
    # nvidia/cu13 (CUDA 13 wheels) before nvidia/cu12, then CUDA 12's per-library folders
    match = re.fullmatch(r"cu(\d+)", folder.name)
    return (0, -int(match.group(1)), "") if match else (1, 0, folder.name)


def wheel_lib_dirs(paths: list[str] | None = None) -> list[str]:
    """The lib folders of NVIDIA's wheels on ``sys.path`` that hold an NVRTC: ``nvidia/cu13/lib``
    (CUDA 13 wheels) and ``nvidia/cuda_nvrtc/lib`` (CUDA 12 wheels), in path order."""
    found: list[str] = []
    for entry in paths if paths is not None else sys.path:
        root = Path(entry or ".") / "nvidia"
        try:
            subdirs = sorted(root.iterdir(), key=_newest_first)
        except OSError:
            continue
        for sub in subdirs:
            lib = sub / "lib"
            try:
                if any(p.name.startswith("libnvrtc.so") for p in lib.iterdir()):
                    found.append(str(lib))
            except OSError:
                continue
    return found


def header_dirs(nvrtc_path: str, environ: dict | None = None) -> list[str]:
    """Include folders for the CUDA headers kernels use (cuda_fp16.h, cuda_bf16.h, mma.h...):
    the toolkit NVRTC came from first (its headers match it), then $CUDA_HOME, $CUDA_PATH and
    /usr/local/cuda. One toolkit only: mixing two versions' headers breaks them. Empty when none
    is found (kernels that include no CUDA header still compile)."""
    env = os.environ if environ is None else environ
    lib = Path(nvrtc_path).parent
    candidates = [lib.parent / "include", lib.parent.parent / "cuda_runtime" / "include"]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var):
            candidates.append(Path(env[var]) / "include")
    candidates.append(Path("/usr/local/cuda/include"))
    for inc in candidates:
        if (inc / "cuda_fp16.h").is_file():
            dirs = [str(inc)]
            # CUDA 13 keeps <nv/target> (which cuda_fp16.h includes) under include/cccl.
            if not (inc / "nv" / "target").exists() and (inc / "cccl" / "nv" / "target").exists():
                dirs.append(str(inc / "cccl"))
            return dirs
    return []


def nvrtc_options(options, include_dirs: list[str] = ()) -> list[str]:
    """NVRTC's command line for a ``metalrt.CompileOptions`` (the target architecture is added
    by the compiler itself). Rejects what CUDA has no meaning for, naming the fix."""
    if options.constants:
        names = ", ".join(str(k) for k, _ in options.constants)
        raise ValueError(
            f"constants= sets MSL function constants ({names}); CUDA sources have none: pass the values "
            "as defines={...} (preprocessor macros) or as kernel arguments"
        )
    if options.math not in _MATH_FLAGS:
        raise ValueError(f"math must be one of {', '.join(map(repr, _MATH_FLAGS))}, got {options.math!r}")
    flags = ["--std=c++17"]
    flags += [f"-D{name}={value}" for name, value in options.defines]
    flags += _MATH_FLAGS[options.math]
    flags += [f"-I{d}" for d in include_dirs]
    return flags


def _missing_header_hint(error: CompileError, include_dirs: list[str]) -> CompileError:
    log = error.log or ""
    if "cannot open source file" not in log or include_dirs:
        return error
    return CompileError(
        f"{error}\n(no CUDA toolkit headers were found for NVRTC; install them with `pip install "
        "nvidia-cuda-runtime` (CUDA 13) or `pip install nvidia-cuda-runtime-cu12`, or set CUDA_HOME)",
        log=log,
        line=error.line,
    )


class CudaDriver:
    name = "cuda"

    def __init__(self) -> None:
        self._ordinal = int(os.environ.get("METALRT_CUDA_DEVICE", "0") or 0)
        self._opened: dict | None = None
        self._device: Device | None = None
        self._target: dict | None = None
        self._cache = DiskCache("cuda", suffix=".img")
        self.stats = {"nvrtc_compiles": 0, "disk_hits": 0, "loads": 0}

    # -- availability --------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        if sys.platform == "darwin":
            return "CUDA needs an NVIDIA GPU on Linux or Windows; on a Mac use the 'metal' backend"
        if not hasattr(_C, "cuda_open_driver"):
            return "this metalrt was built without the CUDA backend; reinstall it on Linux: pip install kbmetal"
        try:
            self._open()
        except BackendUnavailable as e:
            return str(e)
        return None

    def _open(self) -> dict:
        if self._opened is None:
            driver = _C.cuda_open_driver()
            count = _C.cuda_device_count()
            if count == 0:
                raise BackendUnavailable(
                    "[metalrt.cuda] the NVIDIA driver sees no GPU; check nvidia-smi and CUDA_VISIBLE_DEVICES"
                )
            if not 0 <= self._ordinal < count:
                raise BackendUnavailable(
                    f"[metalrt.cuda] METALRT_CUDA_DEVICE={self._ordinal}, but the driver sees {count} "
                    f"device{'s' if count != 1 else ''} (0 to {count - 1})"
                )
            nvrtc = _C.cuda_open_nvrtc(wheel_lib_dirs())
            headers = header_dirs(nvrtc["path"])
            stand_ins = hashlib.sha256(repr(sorted(_C.cuda_builtin_headers().items())).encode()).hexdigest()[:12]
            self._opened = {"driver": driver, "nvrtc": nvrtc, "headers": headers, "stand_ins": stand_ins}
        return self._opened

    # -- the driver protocol -------------------------------------------------------------------

    def device(self) -> Device:
        if self._device is None:
            self._open()
            self._device = Device.from_info(_C.cuda_device_info(self._ordinal))
        return self._device

    def target(self) -> dict:
        """What NVRTC compiles for: ``{"arch": 90, "cubin": True, "name": "sm_90"}``."""
        if self._target is None:
            self._open()
            self._target = _C.cuda_target(self._ordinal)
        return self._target

    def compiler_id(self) -> str:
        o = self._open()
        nvrtc = o["nvrtc"]
        headers = o["headers"][0] if o["headers"] else "none"
        return (f"nvrtc {nvrtc['version_text']} ({nvrtc['path']}); headers {headers}; "
                f"stand-ins {o['stand_ins']}; format {BACKEND_FORMAT}")

    def cache_key(self, source: str, options) -> str:
        """The disk-cache key of a compile: the source, every option, the target the image is
        built for and the compiler that builds it (NVRTC's version and path, the headers, the
        stand-ins, this driver's format)."""
        return DiskCache.key(backend="cuda", target=self.target()["name"], compiler_id=self.compiler_id(),
                             options=options, source=source)

    def build(self, source: str, options):
        o = self._open()
        target = self.target()
        flags = nvrtc_options(options, o["headers"])
        parsed = _C.parse_cuda(source, dict(options.defines), list(options.name_expressions), "kernel.cu")
        expressions = sorted({k.name_expression for k in parsed.kernels if k.name_expression})
        key = self.cache_key(source, options)
        manifest = self._cache.manifest(key)
        meta = (manifest or {}).get("meta") or {}
        image = None
        if manifest is not None and isinstance(meta.get("lowered"), dict):
            try:
                image = self._cache.payload_path(key).read_bytes()
                self.stats["disk_hits"] += 1
            except OSError:
                image = None
        if image is None:
            try:
                compiled = _C.cuda_compile(source, flags, expressions, target["arch"], target["cubin"], "kernel.cu")
            except CompileError as e:
                raise _missing_header_hint(e, o["headers"]) from None
            self.stats["nvrtc_compiles"] += 1
            image = compiled["image"]
            meta = {"lowered": dict(compiled["lowered"]), "cubin": compiled["cubin"], "log": compiled["log"][-4000:]}
            self._cache.put(key, image, meta)
        self.stats["loads"] += 1
        return _C.cuda_load(self._ordinal, image, bool(meta.get("cubin", target["cubin"])), parsed,
                            dict(meta["lowered"]))

    def synchronize(self) -> None:
        self._open()
        _C.cuda_synchronize(self._ordinal)

    def timer(self):
        self._open()
        return _C.cuda_timer(self._ordinal)
