"""The device's reader-writer lock: judges' stages share the device, timing has it alone."""

import fcntl
import select
import subprocess
import sys

import pytest
from kbm_helpers import load, source
from procenv import child_env

HOLD = """
import sys
from kbmetal.evaluator.devicelock import DeviceLock
lock = DeviceLock(sys.argv[1])
with (lock.exclusive() if sys.argv[2] == "exclusive" else lock.shared()):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _holder(path, mode):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    return proc


def _free(path, mode) -> bool:
    with open(path, "a") as f:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _release(proc):
    proc.stdin.write("\n")
    proc.stdin.flush()
    proc.wait(timeout=30)


def test_shared_holders_overlap_and_keep_an_exclusive_one_out(tmp_path):
    path = tmp_path / "device.lock"
    a = _holder(path, "shared")
    assert a.stdout.readline() == "held\n"
    assert _free(path, fcntl.LOCK_SH) and not _free(path, fcntl.LOCK_EX)
    b = _holder(path, "exclusive")
    try:
        ready, _, _ = select.select([b.stdout], [], [], 1.0)
        assert not ready  # waits while a stage holds the device
        _release(a)
        assert b.stdout.readline() == "held\n"  # and gets it once no stage does
        assert not _free(path, fcntl.LOCK_SH)  # timing: nothing else of ours meanwhile
    finally:
        _release(b)
    assert _free(path, fcntl.LOCK_EX)


def test_the_lock_nests_in_one_thread_but_never_waits_for_itself(tmp_path):
    from kbmetal.evaluator.devicelock import DeviceLock

    lock = DeviceLock(str(tmp_path / "device.lock"))
    with lock.exclusive():
        with lock.shared():  # within timing: already alone on the device
            assert not _free(lock.path, fcntl.LOCK_SH)
        assert not _free(lock.path, fcntl.LOCK_SH)
    with lock.shared():
        with lock.shared():
            pass
        assert not _free(lock.path, fcntl.LOCK_EX)  # the outer hold is still there
        with pytest.raises(RuntimeError, match="exclusive"):
            with lock.exclusive():
                pass
    assert _free(lock.path, fcntl.LOCK_EX)


def test_the_judge_holds_the_device_shared_for_trials_and_alone_for_timing(tmp_path):
    """The candidate itself probes the lock on every forward: during correctness trials another
    stage could share the device but no timing could start; during timing nothing could."""
    from kbmetal.evaluator import EvalOptions, Judge

    path, record = tmp_path / "device.lock", tmp_path / "probes.txt"
    probe = source(
        f"""
        import fcntl, torch
        def _state():
            with open({str(path)!r}, "a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return "exclusive"
                fcntl.flock(f, fcntl.LOCK_UN)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return "shared"
                fcntl.flock(f, fcntl.LOCK_UN)
                return "free"
        class ModelNew(torch.nn.Module):
            def forward(self, x):
                with open({str(record)!r}, "a") as out:
                    out.write(_state() + "\\n")
                return torch.relu(x)
        """
    )
    options = EvalOptions(require_kernel=False, strict=False, timing_lock=str(path))
    with Judge(options) as judge:
        v = judge.evaluate(load("L1-001"), probe, "sim")
    assert v.passed, v.reason
    states = record.read_text().split()
    trials = len(v.trials)
    assert states[:trials] == ["shared"] * trials
    assert set(states[trials:]) == {"exclusive"} and len(states) > trials
