"""Where a candidate process's start-up goes, step by step, on the best backend here.

    python benchmarks/worker_startup.py [--at-once N ...]

A parent imports torch, kbmetal's worker and metalrt (as the judge's fork server does, touching
no device), then forks N children at once; each times the steps of the worker's device
preparation (evaluator/worker.py: Worker.prepare) in order and reports them. Printed: per N,
the median seconds of each step over the children.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def steps(backend: str) -> list[tuple[str, object]]:
    import torch

    from kbmetal.evaluator import launches, timing

    device = {"cuda": "cuda", "metal": "mps"}.get(backend, "cpu")
    state: dict[str, object] = {}

    def cpu_matmul():
        x = torch.randn(256, 256)
        (x @ x).sum().item()

    def device_init():
        if device == "cuda":
            torch.cuda.init()
            torch.empty(1, device="cuda")
            torch.cuda.synchronize()

    def device_matmul():
        y = torch.randn(256, 256).to(device)
        (y @ y).sum().item()

    def timing_init():
        state["timing"] = timing.timing_for(backend)

    def counter_first_use():
        counter = launches.counter_for(backend)
        y = torch.randn(256, 256).to(device)
        with counter.counting():
            (y @ y).sum().item()

    def metalrt_first_launch():
        import metalrt

        if backend == "cuda":
            lib = metalrt.compile('extern "C" __global__ void touch(float* y) { y[threadIdx.x] = 1.0f; }', "cuda")
            out = torch.empty(64, device=device)
            lib.touch(out, threads=64)
            metalrt.synchronize("cuda")

    return [("cpu matmul (intra-op threads)", cpu_matmul), ("device init (context)", device_init),
            ("device matmul (cuBLAS)", device_matmul), ("timing init (flush buffer, idle gap)", timing_init),
            ("launch counter first use (profiler)", counter_first_use),
            ("metalrt compile (disk cache) + launch", metalrt_first_launch)]


def child(write_fd: int) -> None:
    from kbmetal.evaluator.backends import best

    start = time.perf_counter()
    backend = best()  # here, not in the parent: probing a GPU there would break every fork
    times = {f"backend probe ({backend})": time.perf_counter() - start}
    for name, fn in steps(backend):
        start = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - start
    os.write(write_fd, (json.dumps(times) + "\n").encode())
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at-once", type=int, nargs="+", default=[1, 6])
    args = parser.parse_args()
    start = time.perf_counter()
    import torch  # noqa: F401

    import kbmetal.evaluator.worker  # noqa: F401
    import metalrt  # noqa: F401

    print(f"parent: import torch + kbmetal worker + metalrt {time.perf_counter() - start:.2f} s")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    for n in args.at_once:
        read_fd, write_fd = os.pipe()
        t0 = time.perf_counter()
        pids = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                child(write_fd)
            pids.append(pid)
        os.close(write_fd)
        for pid in pids:
            os.waitpid(pid, 0)
        wall = time.perf_counter() - t0
        with os.fdopen(read_fd) as f:
            results = [json.loads(line) for line in f if line.strip()]
        print(f"== {n} at once: all ready after {wall:.2f} s ==")
        for name in results[0]:
            values = [r[name] for r in results]
            print(f"  {name:42s} median {statistics.median(values):6.2f} s  max {max(values):6.2f} s")


if __name__ == "__main__":
    main()
