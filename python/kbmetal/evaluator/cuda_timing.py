"""CUDA timing: events on the current stream, with a device-wide check that nothing escaped them.

One run of `time_call(fn)`:

    record `start` on the current stream         behind the refill and the cache flush, so the
                                                 GPU is busy and no launch latency is counted
    fn()
    record `end` on the current stream           what the run put on its own stream ends here
    synchronise the device                       every stream, every launch
    record `fence` on the current stream         the first moment the device was seen idle

Work that `fn` hid on another stream, or left running after `end`, delays `fence`. When
`fence - end` is no more than what waking from a synchronisation and recording an event cost
after device work (measured once, `idle_gap_ms`, plus a slack of 50 us or 2% of the run), all of
the run's work was inside `start..end`, and that interval, exactly what the GPU spent, is the
result: the quantity `triton.testing.do_bench` reports. Otherwise the run is charged
`start..fence` less the idle gap, so hiding work on a side stream never makes a candidate look
faster. Earlier work cannot leak into a run: the previous run ended with a device-wide
synchronisation, and everything since (refill, flush) is on the current stream before `start`.

Between runs the L2 is flushed by writing a buffer twice its size, so no run inherits the
previous run's inputs in cache. Float32 means float32 on this device: TF32 is turned off for
matmuls and cuDNN convolutions in every process that times (the reference, the baselines and
the candidate are then held to the same arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .timing import DeviceTiming, _metalrt_synchronize

# A run whose fence trails its end event by more than the idle gap plus this much (or this share
# of the run) had work outside the current stream's interval.
_SIDE_WORK_SLACK_MS = 0.05
_SIDE_WORK_SLACK_SHARE = 0.02
# Device work for calibrating the idle gap: about a millisecond, long enough that the host waits
# in the synchronisation as it does after a real run.
_CALIBRATION_CYCLES = 2_000_000


class CudaTiming(DeviceTiming):
    backend = "cuda"
    method = "cuda-events (current stream, device-wide sync check), L2 flushed"
    is_performance = True

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self._sync_metalrt = _metalrt_synchronize("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        device = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(device)
        l2 = int(getattr(props, "L2_cache_size", 0) or 0) or 64 << 20
        self._flush_buffer = torch.empty(2 * l2 // 4, dtype=torch.float32, device="cuda")
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
        self.side_work_runs = 0  # runs charged to the fence (work outside the current stream)
        self.idle_gap_ms = self._measure_idle_gap()

    def synchronize(self) -> None:
        self._sync_metalrt()
        self._torch.cuda.synchronize()

    def flush_cache(self) -> None:
        self._flush_buffer.fill_(1.0)

    def _interval(self, fn: Callable[[], Any]) -> tuple[float, float]:
        start, end, fence = self._events
        start.record()
        fn()
        end.record()
        self.synchronize()
        fence.record()
        fence.synchronize()
        return float(start.elapsed_time(end)), float(start.elapsed_time(fence))

    def _measure_idle_gap(self) -> float:
        """What `fence - end` is when all the work was on the current stream: waking from the
        synchronisation and recording an event, after a millisecond of device work (a host that
        waited longer wakes slower than one that did not wait). The upper quartile of a few, so
        an ordinary slow wake-up does not look like hidden work."""
        busy = lambda: self._torch.cuda._sleep(_CALIBRATION_CYCLES)  # noqa: E731
        for _ in range(3):
            self._interval(busy)
        gaps = sorted(to_fence - to_end for to_end, to_fence in (self._interval(busy) for _ in range(12)))
        return gaps[len(gaps) * 3 // 4]

    def time_call(self, fn: Callable[[], Any]) -> float:
        to_end, to_fence = self._interval(fn)
        slack = max(_SIDE_WORK_SLACK_MS, _SIDE_WORK_SLACK_SHARE * to_end)
        if to_fence - to_end <= self.idle_gap_ms + slack:
            return to_end
        self.side_work_runs += 1
        return max(to_end, to_fence - self.idle_gap_ms)
