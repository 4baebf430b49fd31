"""The device's facts as a prompt states them, from `metalrt.device()`: SIMD width, threads and
memory per threadgroup, unified memory, bandwidth.

Where the backend is not usable on this machine (writing Metal prompts on Linux to judge on a Mac
later), the facts of the family are stated instead, and say so.
"""

from __future__ import annotations

from typing import Any

# What every Apple GPU of the M family guarantees: what a kernel may rely on without knowing more.
_APPLE = {"simd_width": 32, "max_threads_per_group": 1024, "max_threadgroup_memory": 32768, "unified_memory": True}


def _device(backend: str) -> Any | None:
    try:
        import metalrt

        if backend not in metalrt.backends():
            return None
        return metalrt.device(backend)
    except Exception:  # no runtime, or the backend cannot start here: state the family's facts
        return None


def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


def device_facts(backend: str, device: Any | None = None) -> str:
    """A short section on the device the kernels will be judged on."""
    device = device if device is not None else _device(backend)
    lines = ["## The device", ""]
    if backend in ("sim", "metal"):
        facts = dict(_APPLE)
        if device is not None:
            facts.update({k: getattr(device, k) for k in facts if hasattr(device, k)})
        if backend == "sim":
            lines.append("Kernels are judged on kbmetal's simulator of an Apple GPU: MSL compiled for the CPU, with "
                         "barriers and SIMD-group functions behaving as on the GPU. It reports what a GPU would hide: "
                         "out-of-bounds accesses, barriers not every thread reaches, races on threadgroup memory. "
                         "Its timings are not performance; write the kernel you would run on a Mac.")
        elif device is not None:
            lines.append(f"Kernels are judged on {device.name}.")
        else:
            lines.append("Kernels are judged on an Apple silicon GPU (M series).")
        lines += [
            "",
            f"- SIMD-group width: {facts['simd_width']} threads",
            f"- at most {facts['max_threads_per_group']} threads per threadgroup",
            f"- threadgroup memory: {_kib(int(facts['max_threadgroup_memory']))} per threadgroup",
            "- unified memory: CPU and GPU share it; tensors bind to kernels without copies"
            if facts["unified_memory"] else "- discrete memory",
        ]
        bandwidth = getattr(device, "peak_bandwidth_gbs", 0.0) if device is not None else 0.0
        if bandwidth:
            lines.append(f"- peak memory bandwidth: about {bandwidth:.0f} GB/s")
        return "\n".join(lines) + "\n"
    if device is not None:
        lines.append(f"Kernels are judged on {device.name}" + (f" ({device.target})." if getattr(device, "target", "") else "."))
        lines += [
            "",
            f"- warp width: {device.simd_width} threads",
            f"- at most {device.max_threads_per_group} threads per block",
            (f"- shared memory: up to {_kib(int(device.max_threadgroup_memory))} per block "
             "(above 48 KiB only as dynamic shared memory)"),
        ]
        if getattr(device, "memory_bytes", 0):
            lines.append(f"- device memory: {device.memory_bytes / 2**30:.0f} GiB")
        if getattr(device, "peak_bandwidth_gbs", 0.0):
            lines.append(f"- peak memory bandwidth: about {device.peak_bandwidth_gbs:.0f} GB/s")
    else:
        lines.append("Kernels are judged on an NVIDIA GPU: warps of 32 threads, at most 1024 threads per block, "
                     "48 KiB of static shared memory per block.")
    return "\n".join(lines) + "\n"
