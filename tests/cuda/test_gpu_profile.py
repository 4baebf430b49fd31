"""metalrt.profile() on the CUDA backend: CUDA events on the launch's stream, read when the
profile ends; launches stay asynchronous and correct; the event pool is reused across profiles."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import metalrt  # noqa: E402

pytestmark = pytest.mark.gpu

SRC = r"""
extern "C" __global__ void spin(float* out, long long cycles) {
  long long start = clock64();
  while (clock64() - start < cycles) {}
  if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = 1.0f;
}
extern "C" __global__ void fill(float* out, float value, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}
"""


@pytest.fixture(scope="module")
def lib():
    return metalrt.compile(SRC, backend="cuda")


def test_cuda_launches_are_timed_by_events(lib):
    out = torch.zeros(1 << 16, device="cuda")
    n = out.numel()
    with metalrt.profile() as prof:
        lib.spin(out, 1_000_000, threads=1)
        lib.spin(out, 50_000_000, threads=1)
        lib.fill(out, 2.0, n, threads=n)
    assert [(r["kernel"], r["backend"], r["clock"]) for r in prof.records] == [
        ("spin", "cuda", "cuda-event"), ("spin", "cuda", "cuda-event"), ("fill", "cuda", "cuda-event")]
    short, long_, fill = prof.records
    assert 0 < short["gpu_ms"] < long_["gpu_ms"]  # the events bracket each launch, not the host call
    assert fill["threads"] == [n, 1, 1] and fill["groups"][0] * fill["group_size"][0] >= n
    assert torch.equal(out, torch.full_like(out, 2.0))
    assert prof.summary()[0]["kernel"] == "spin" and prof.summary()[0]["count"] == 2


def test_events_go_on_pytorchs_current_stream(lib):
    out = torch.zeros(16, device="cuda")
    side = torch.cuda.Stream()
    with metalrt.profile() as prof:
        with torch.cuda.stream(side):
            torch.cuda._sleep(20_000_000)  # queued before the launch on the same stream
            lib.fill(out, 1.0, 16, threads=16)
    side.synchronize()
    with metalrt.timer("cuda") as sleep:
        torch.cuda._sleep(20_000_000)
    (record,) = prof.records
    # Events on another stream than the launch's would time the sleep too, or nothing at all.
    assert 0 < record["gpu_ms"] < sleep.ms / 2
    assert torch.equal(out, torch.ones_like(out))


def test_the_event_pool_is_reused_across_profiles(lib):
    out = torch.zeros(16, device="cuda")
    for _ in range(3):
        with metalrt.profile() as prof:
            for _ in range(100):
                lib.fill(out, 1.0, 16, threads=16)
        assert len(prof.records) == 100 and all(r["gpu_ms"] >= 0 for r in prof.records)
