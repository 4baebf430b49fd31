"""The Python-side cost of a metalrt launch, on the CPU (issue 5's launch-overhead target).

    PYTHONPATH=src:python python benchmarks/launch_path.py [--before CHECKOUT] [--calls N]

A launch from Python is Kernel.__call__: argument conversion, bind_arguments, resolve_launch,
then the backend's launch. Everything up to the backend is the same code on every backend, so
it is measured here without a GPU, through `_C._RecordingLibrary` (a native test double whose
kernels bind and check arguments like any backend's, then record the launch instead of running
it) with CPU tensors: a CUDA tensor takes the same reads, plus its device index, and a CUDA
launch adds the stream lookup and cuLaunchKernel (benchmarks/cuda_runtime.py measures those on
the H100). The double also keeps a copy of the bound arguments and releases the GIL around its
launch (it declares itself synchronous, like the sim); a CUDA launch does neither, so the proxy
errs on the slow side.

Rows:
  recording, 3 tensors + 1 scalar   lib.k(x, y, z, n, threads=n): the target (<= ~1.5 us)
  recording, 4 scalars              the same call without tensors: the call and binding alone
  recording, cuda policy            the kernel expects CUDA memory (as on the CUDA backend) but
                                    accepts host arrays, so CPU tensors go through the device
                                    tests a CUDA backend makes
  ..., profiled                     the first row inside `with metalrt.profile()` (host-wall
                                    records); absent for a metalrt without profile()
  sim, 3 tensors + 1 scalar         the sim backend, one 32-thread launch on one worker (the
                                    executor's own time included: a sim launch runs the kernel)
  torch.add(x, y, out=z)            a tiny CPU torch op, for scale

Each figure is the median over batches of the per-call time (perf_counter_ns around batches of
100 calls, N calls in all after a warm-up). With --before, the same rows are measured for the
metalrt of another checkout (its src/ with a built metalrt/_C*.so, e.g. a `git worktree` of
HEAD built with cmake) in a child process, and printed side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
BATCH = 100

MSL = """
#include <metal_stdlib>
using namespace metal;
kernel void add(const device float* x [[buffer(0)]], const device float* y [[buffer(1)]],
                device float* z [[buffer(2)]], constant uint& n [[buffer(3)]],
                uint i [[thread_position_in_grid]]) { if (i < n) z[i] = x[i] + y[i]; }
kernel void scalars(constant uint& a [[buffer(0)]], constant float& b [[buffer(1)]],
                    constant int& c [[buffer(2)]], constant uint& n [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {}
"""


def per_call_us(call, calls: int) -> float:
    """Median over batches of BATCH calls of the time per call, in microseconds."""
    for _ in range(max(calls // 10, BATCH)):  # warm-up: caches, branch predictors, allocator
        call()
    samples = []
    for _ in range(max(calls // BATCH, 1)):
        t0 = time.perf_counter_ns()
        for _ in range(BATCH):
            call()
        samples.append((time.perf_counter_ns() - t0) / BATCH / 1e3)
    return statistics.median(samples)


def measure(calls: int) -> dict[str, float]:
    """The rows, measured with whichever metalrt is importable."""
    import torch

    import metalrt
    from metalrt import _C

    n = 32
    x, y, z = torch.randn(n), torch.randn(n), torch.empty(n)
    parsed = _C.parse_msl(MSL, {})
    rows: dict[str, float] = {}

    recording = _C._RecordingLibrary(parsed)
    add, scalars = recording.kernel("add"), recording.kernel("scalars")
    add(x, y, z, n, threads=n)
    assert add.launches == 1, "the recording kernel did not record the launch"
    rows["recording, 3 tensors + 1 scalar"] = per_call_us(lambda: add(x, y, z, n, threads=n), calls)
    rows["recording, 4 scalars"] = per_call_us(lambda: scalars(1, 2.0, 3, n, threads=n), calls)

    cuda_policy = _C._RecordingLibrary(parsed, memory="cuda", accept_host_arrays=True, backend="cuda").kernel("add")
    rows["recording, cuda policy, 3 tensors + 1 scalar"] = per_call_us(lambda: cuda_policy(x, y, z, n, threads=n), calls)

    if hasattr(metalrt, "profile"):  # the launch path with a profile active, for comparison
        with metalrt.profile():
            rows["recording, 3 tensors + 1 scalar, profiled"] = per_call_us(lambda: add(x, y, z, n, threads=n), calls)

    if "sim" in metalrt.backends():  # the sim needs clang >= 17 (absent on GPU machines, say)
        _C.sim_set_options(workers=1, racecheck=False)  # one thread: steadier on a shared machine
        sim = metalrt.compile(MSL, backend="sim").add
        sim(x, y, z, n, threads=n)
        assert torch.equal(z, x + y), "the sim launch computed the wrong sum"
        rows["sim, 3 tensors + 1 scalar"] = per_call_us(lambda: sim(x, y, z, n, threads=n), calls)

    rows["torch.add(x, y, out=z), cpu"] = per_call_us(lambda: torch.add(x, y, out=z), calls)
    return rows


def measure_in(src: pathlib.Path, calls: int) -> dict[str, float]:
    """The rows for the metalrt under `src` (when it holds a built _C; else the installed one),
    measured in a child process."""
    paths = [str(src)] if list((src / "metalrt").glob("_C*.so")) else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [str(REPO / "python")]))
    done = subprocess.run([sys.executable, __file__, "--child", "--calls", str(calls)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"measuring the metalrt in {src if paths else 'site-packages'} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=pathlib.Path,
                        help="a checkout whose src/metalrt has a built _C, measured as 'before'")
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls per row (default 10,000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls)))
        return

    after = measure_in(REPO / "src", args.calls)
    before = None
    if args.before:
        src = args.before / "src"
        if not list((src / "metalrt").glob("_C*.so")):
            sys.exit(f"{src / 'metalrt'} has no built _C*.so; build that checkout first "
                     "(cmake -S CHECKOUT -B CHECKOUT/build ... and copy build/_C*.so into src/metalrt/)")
        before = measure_in(src, args.calls)

    print(f"per-call median, us (CPU, {args.calls} calls per row, batches of {BATCH})")
    width = max(len(k) for k in after)
    header = f"{'':{width}}  {'before':>8}  {'after':>8}  {'ratio':>6}" if before else f"{'':{width}}  {'us':>8}"
    print(header)
    for name, us in after.items():
        if before is not None:
            b = before.get(name)
            shown = f"{b:8.3f}" if b is not None else f"{'-':>8}"
            ratio = f"{b / us:5.2f}x" if b is not None else "-"
            print(f"{name:{width}}  {shown}  {us:8.3f}  {ratio:>6}")
        else:
            print(f"{name:{width}}  {us:8.3f}")
    target = after["recording, 3 tensors + 1 scalar"]
    print(f"target: the Python-side path at or under ~1.5 us for 3 tensors + 1 scalar: {target:.3f} us "
          f"({'met' if target <= 1.5 else 'not met'})")


if __name__ == "__main__":
    main()
