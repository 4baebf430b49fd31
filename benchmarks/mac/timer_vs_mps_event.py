"""metalrt.timer() against torch.mps.Event and the host clock, on the same metalrt launches over
growing sizes. metalrt's timer adds up GPU time (counter timestamps at the encoder's boundaries,
or the command buffers' GPU start/end); torch.mps.Event pairs bracket the launches on PyTorch's
stream, so they include metalrt's synchronisation with it; the host clock includes everything.

    python benchmarks/mac/timer_vs_mps_event.py [--reps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import require_mac, torch_mps

SOURCE = """
#include <metal_stdlib>
using namespace metal;
kernel void saxpy(device const float4* x [[buffer(0)]], device float4* y [[buffer(1)]],
                  constant float& a [[buffer(2)]], uint i [[thread_position_in_grid]]) {
    y[i] = a * x[i] + y[i];
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    require_mac()
    torch, why = torch_mps()
    if torch is None:
        raise SystemExit(f"needs torch with MPS: {why}")
    import metalrt

    lib = metalrt.compile(SOURCE, backend="metal")
    with metalrt.timer() as probe:
        pass
    print(f"metalrt timer method: {probe.method}")
    print(f"{'floats':>12} {'GB/s (metalrt)':>15} {'metalrt ms':>11} {'mps.Event ms':>13} {'host ms':>9}")
    for n in [1 << 16, 1 << 20, 1 << 22, 1 << 24, 1 << 26]:
        x = torch.randn(n, device="mps")
        y = torch.randn(n, device="mps")
        ours, events, host = [], [], []
        for rep in range(a.reps + 3):
            torch.mps.synchronize()
            start, end = torch.mps.Event(enable_timing=True), torch.mps.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            with metalrt.timer() as t:
                lib.saxpy(x, y, 0.5, threads=n // 4)
            end.record()
            end.synchronize()
            t1 = time.perf_counter()
            if rep >= 3:
                ours.append(t.ms)
                events.append(start.elapsed_time(end))
                host.append((t1 - t0) * 1e3)
        m = statistics.median(ours)
        gbs = 3 * 4 * n / (m * 1e-3) / 1e9
        print(f"{n:>12} {gbs:>15.1f} {m:>11.4f} {statistics.median(events):>13.4f} {statistics.median(host):>9.4f}")


if __name__ == "__main__":
    main()
