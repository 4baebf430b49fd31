"""The exchange region: tensors of every dtype go both ways intact, the worker can write only
inside the judge's slots, and nothing the worker does to the region can fault the judge."""

import os

import pytest
import torch
from kbmetal.evaluator import exchange, tensorio


@pytest.fixture
def regions():
    judge_side = exchange.HostRegion()
    worker_side = exchange.WorkerRegion(judge_side.fd)
    yield judge_side, worker_side
    judge_side.close()


def _attach(judge_side, worker_side, size):
    judge_side.ensure(size)
    worker_side.attach(judge_side.describe(), "cpu")


TENSORS = [
    torch.randn(33, 17),
    torch.randn(5, 7, dtype=torch.float64),
    torch.randn(9).to(torch.bfloat16),
    torch.randn(4, 4).half(),
    torch.arange(-5, 6),
    torch.tensor([True, False, True]),
    torch.randn(3, dtype=torch.complex64),
    torch.tensor(2.5),  # 0-dim
    torch.empty(0, 4),
    torch.randn(6, 8).t(),  # not contiguous
]


def test_every_dtype_goes_there_and_back_bit_for_bit(regions):
    judge_side, worker_side = regions
    layout = exchange.Layout()
    there = [layout.take(exchange.nbytes_of(x)) for x in TENSORS]
    back = [layout.take(exchange.nbytes_of(x)) for x in TENSORS]
    _attach(judge_side, worker_side, layout.size)
    for x, slot in zip(TENSORS, there):
        judge_side.write(slot, x)
        assert slot.offset % exchange.ALIGN == 0
    for x, a, b in zip(TENSORS, there, back):
        record = tensorio.record(x, offset=a.offset, nbytes=a.nbytes)
        seen = worker_side.tensor(record).clone()
        assert seen.dtype == x.dtype and list(seen.shape) == list(x.shape)
        assert torch.equal(exchange.tensor_bytes(seen), exchange.tensor_bytes(x))
        assert worker_side.store(b.to_json(), seen + 0 if seen.dtype != torch.bool else seen)
        got = judge_side.read(b, x.dtype, list(x.shape), "cpu")
        assert torch.equal(exchange.tensor_bytes(got), exchange.tensor_bytes(x))


def test_the_worker_cannot_write_past_a_slot_or_read_outside_the_region(regions):
    judge_side, worker_side = regions
    _attach(judge_side, worker_side, 4096)
    # an output larger than its slot (wrong shape or dtype) is not stored; the judge sees that
    assert not worker_side.store([0, 16], torch.zeros(5))
    assert worker_side.store([0, 16], torch.ones(4))
    with pytest.raises(tensorio.TransferError, match="outside the exchange region"):
        worker_side.store([4090, 64], torch.ones(4))
    record = {"kind": "tensor", "dtype": "float32", "shape": [2048], "offset": 0, "nbytes": 8192}
    with pytest.raises(tensorio.TransferError, match="outside the exchange region"):
        worker_side.tensor(record)
    with pytest.raises(tensorio.TransferError, match="unsupported dtype"):
        worker_side.tensor({**record, "dtype": "object"})
    with pytest.raises(tensorio.TransferError, match="record of"):
        worker_side.tensor({**record, "shape": [4], "nbytes": 20})


def test_a_region_truncated_by_the_worker_is_an_error_for_the_judge_not_a_crash(regions):
    judge_side, worker_side = regions
    _attach(judge_side, worker_side, 1 << 20)
    os.ftruncate(judge_side.fd, 100)  # what a hostile candidate could do to its mapping's file
    with pytest.raises(tensorio.TransferError, match="ends"):
        judge_side.read(exchange.Slot(0, 4096), torch.float32, [1024], "cpu")


def test_records_say_what_a_tensor_is_never_where_its_bytes_are():
    record = tensorio.record(torch.zeros(2, 3), stored=True)
    assert record == {
        "kind": "tensor",
        "dtype": "float32",
        "shape": [2, 3],
        "stride": [3, 1],
        "device": "cpu",
        "stored": True,
    }
    assert tensorio.check_record(record) == (torch.float32, [2, 3])
    with pytest.raises(tensorio.TransferError):
        tensorio.check_record({"kind": "tensor", "dtype": "float32", "shape": [-1]})
