"""metalrt.profile(): which launches it records, what each record says, summary(), nesting, and
that nothing is recorded outside a profile. Times are never compared to expectations, only
checked to be measurements (finite, not negative)."""

from __future__ import annotations

import math
import threading

import pytest

torch = pytest.importorskip("torch")

import metalrt  # noqa: E402
from metalrt import _C  # noqa: E402

SRC = """
#include <metal_stdlib>
using namespace metal;
kernel void add(const device float* x [[buffer(0)]], device float* y [[buffer(1)]],
                constant uint& n [[buffer(2)]], uint i [[thread_position_in_grid]]) {
  if (i < n) y[i] += x[i];
}
kernel void fill(device float* y [[buffer(0)]], constant float& v [[buffer(1)]],
                 uint2 p [[thread_position_in_grid]], uint2 size [[threads_per_grid]]) {
  y[p.y * size.x + p.x] = v;
}
"""

KEYS = {"kernel", "backend", "threads", "groups", "group_size", "gpu_ms", "clock"}


@pytest.fixture
def recording():
    lib = _C._RecordingLibrary(_C.parse_msl(SRC, {}))
    return lib.kernel("add"), lib.kernel("fill")


@pytest.fixture(autouse=True)
def no_profile_left_active():
    yield
    if _C._profile_active():  # a failing test must not leave the next one profiled
        _C._profile_stop()
        pytest.fail("the test left a profile active")


def test_records_every_launch_in_order_with_its_geometry(recording):
    add, fill = recording
    x, y = torch.ones(64), torch.zeros(64)
    with metalrt.profile() as prof:
        add(x, y, 64, threads=64)
        fill(y, 2.0, threads=(8, 8), group_size=(4, 2))
        add(x, y, 64, groups=2, group_size=32)
    assert [r["kernel"] for r in prof.records] == ["add", "fill", "add"]
    assert all(set(r) == KEYS for r in prof.records)
    first, second, third = prof.records
    assert first["threads"] == [64, 1, 1] and first["group_size"] == [64, 1, 1] and first["groups"] == [1, 1, 1]
    assert second["threads"] == [8, 8, 1] and second["group_size"] == [4, 2, 1] and second["groups"] == [2, 4, 1]
    assert third["threads"] is None and third["groups"] == [2, 1, 1] and third["group_size"] == [32, 1, 1]
    for r in prof.records:
        assert r["backend"] == "sim" and r["clock"] == "host-wall"
        assert isinstance(r["gpu_ms"], float) and math.isfinite(r["gpu_ms"]) and r["gpu_ms"] >= 0


def test_summary_aggregates_per_kernel_sorted_by_total(recording):
    add, fill = recording
    x, y = torch.ones(64), torch.zeros(64)
    with metalrt.profile() as prof:
        for _ in range(3):
            add(x, y, 64, threads=64)
        fill(y, 1.0, threads=(8, 8))
    prof.records = [dict(r, gpu_ms=ms) for r, ms in zip(prof.records, [1.0, 2.0, 3.0, 10.0])]
    assert prof.summary() == [
        {"kernel": "fill", "backend": "sim", "count": 1, "total_ms": 10.0, "mean_ms": 10.0, "clock": "host-wall"},
        {"kernel": "add", "backend": "sim", "count": 3, "total_ms": 6.0, "mean_ms": 2.0, "clock": "host-wall"},
    ]


def test_summary_of_measured_records_adds_up(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    with metalrt.profile() as prof:
        for _ in range(5):
            add(x, y, 8, threads=8)
    (row,) = prof.summary()
    assert row["kernel"] == "add" and row["count"] == 5
    assert row["total_ms"] == pytest.approx(sum(r["gpu_ms"] for r in prof.records))
    assert row["mean_ms"] == pytest.approx(row["total_ms"] / 5)


def test_nothing_is_recorded_outside_a_profile(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    add(x, y, 8, threads=8)  # before
    with metalrt.profile() as prof:
        add(x, y, 8, threads=8)
    add(x, y, 8, threads=8)  # after
    assert len(prof.records) == 1
    with metalrt.profile() as empty:
        pass
    assert empty.records == [] and empty.summary() == []
    assert add.launches == 3


def test_failed_launches_leave_no_record(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    with metalrt.profile() as prof:
        with pytest.raises(metalrt.ArgumentError):
            add(x, y.double(), 8, threads=8)
        with pytest.raises(metalrt.LaunchError):
            add(x, y, 8, threads=8, group_size=4096)
        add(x, y, 8, threads=8)
    assert len(prof.records) == 1


def test_profiles_do_not_nest():
    with metalrt.profile() as outer:
        with pytest.raises(RuntimeError, match=r"already active.*do not nest"):
            with metalrt.profile():
                pass
        assert _C._profile_active()  # the refused inner profile did not end the outer one
    assert outer.records == [] and not _C._profile_active()


def test_a_profile_ends_with_an_exception_in_its_block(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    with pytest.raises(KeyError):
        with metalrt.profile() as prof:
            add(x, y, 8, threads=8)
            raise KeyError("boom")
    assert len(prof.records) == 1 and not _C._profile_active()


def test_launches_from_other_threads_are_recorded(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    with metalrt.profile() as prof:
        worker = threading.Thread(target=lambda: [add(x, y, 8, threads=8) for _ in range(4)])
        worker.start()
        worker.join()
    assert [r["kernel"] for r in prof.records] == ["add"] * 4


def test_a_profile_object_is_reusable_but_starts_afresh(recording):
    add, _ = recording
    x, y = torch.ones(8), torch.zeros(8)
    prof = metalrt.profile()
    with prof:
        add(x, y, 8, threads=8)
    with prof:
        pass
    assert prof.records == []


def test_sim_launches_are_timed_by_host_wall_clock():
    lib = metalrt.compile(SRC, backend="sim")
    x, y = torch.arange(32, dtype=torch.float32), torch.zeros(32)
    with metalrt.profile() as prof:
        lib.add(x, y, 32, threads=32)
        lib.fill(y, 3.0, threads=(4, 8))
    assert torch.equal(y, torch.full((32,), 3.0))  # profiled launches still run
    assert [(r["kernel"], r["backend"], r["clock"]) for r in prof.records] == [
        ("add", "sim", "host-wall"), ("fill", "sim", "host-wall")]
    assert prof.records[1]["threads"] == [4, 8, 1]
    assert all(r["gpu_ms"] > 0 for r in prof.records)
    assert [row["kernel"] for row in prof.summary()] == sorted(
        ["add", "fill"], key=lambda k: -sum(r["gpu_ms"] for r in prof.records if r["kernel"] == k))


def test_a_kernel_keeps_its_backend_name_and_unknown_kernels_get_the_host_clock():
    # A test double that calls itself "cuda" is no CUDA kernel: the CUDA event clock must not
    # take it (there is no driver here), and its records still name its backend.
    lib = _C._RecordingLibrary(_C.parse_msl(SRC, {}), memory="cuda", accept_host_arrays=True, backend="cuda")
    add = lib.kernel("add")
    with metalrt.profile() as prof:
        add(torch.ones(8), torch.zeros(8), 8, threads=8)
    assert [(r["backend"], r["clock"]) for r in prof.records] == [("cuda", "host-wall")]
