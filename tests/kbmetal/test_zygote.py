"""Candidate processes forked from the judge's fork server: still one fresh process per candidate,
in the same sandbox as a fresh interpreter (its own session, no core dumps, its work folder, death
with its parent, no secrets), and gone when the judge dies."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from kbm_helpers import load, source
from procenv import child_env

SECRET = "sk-test-zygote-0123456789"

# what a candidate can see of its sandbox, printed as one JSON line into its log
INSPECT = source(
    """
    import ctypes, json, os, resource, sys, torch
    pdeathsig = ctypes.c_int(0)
    ctypes.CDLL(None).prctl(2, ctypes.byref(pdeathsig), 0, 0, 0)  # PR_GET_PDEATHSIG
    ppid = os.getppid()
    def _fds():
        links = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                links[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:  # the listing's own
                pass
        return links
    try:
        parent_env = open(f"/proc/{ppid}/environ", "rb").read().decode("utf-8", "replace")
    except OSError as exc:
        parent_env = str(exc)
    print("SANDBOX " + json.dumps({
        "pid": os.getpid(), "ppid": ppid, "own_session": os.getsid(0) == os.getpid(),
        "core": resource.getrlimit(resource.RLIMIT_CORE)[1], "pdeathsig": pdeathsig.value,
        "cwd": os.getcwd(), "fds": _fds(),
        "secret_here": any("SECRET_VALUE" in v for v in os.environ.values()),
        "secret_in_parent": "SECRET_VALUE" in parent_env, "pythonpath": "PYTHONPATH" in os.environ,
    }), flush=True)
    class ModelNew(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x)
    """
).replace("SECRET_VALUE", SECRET)


def _sandbox(verdict) -> dict:
    line = next(l for l in verdict.log_tail.splitlines() if l.startswith("SANDBOX "))
    return json.loads(line[len("SANDBOX ") :])


@pytest.mark.parametrize("fork_server", [True, False])
def test_the_candidate_gets_the_same_sandbox_forked_or_spawned(fork_server, monkeypatch):
    from kbmetal.evaluator import EvalOptions, Judge, zygote

    zygote.stop_shared()  # the next one starts from this environment, secret included
    monkeypatch.setenv("MY_PROVIDER_API_KEY", SECRET)
    options = EvalOptions(require_kernel=False, strict=False, timing=False, fork_server=fork_server)
    try:
        with Judge(options) as judge:
            v = judge.evaluate(load("L1-001"), INSPECT, "sim")
            server = zygote._ZYGOTE
    finally:
        zygote.stop_shared()
    assert v.passed, v.reason
    seen = _sandbox(v)
    assert seen["own_session"] and seen["core"] == 0 and seen["pdeathsig"] == signal.SIGKILL
    assert os.path.basename(seen["cwd"]).startswith("kbmetal-eval-")
    assert not seen["secret_here"] and not seen["secret_in_parent"] and seen["pythonpath"]
    # the protocol's two pipes and the exchange region; nothing of the fork server's
    assert len(seen["fds"]) <= 7 and not any("socket" in link for link in seen["fds"].values()), seen["fds"]
    if fork_server:
        assert seen["ppid"] == server.proc.pid != os.getpid()
        assert "worker_startup_fork" in v.durations and "worker_startup_torch" not in v.durations
    else:
        assert seen["ppid"] == os.getpid()
        assert "worker_startup_torch" in v.durations and "worker_startup_fork" not in v.durations
    assert v.durations["worker_startup_ready"] > 0


def test_each_forked_candidate_is_a_new_process(lenient_judge):
    first = _sandbox(lenient_judge.evaluate(load("L1-001"), INSPECT, "sim"))
    second = _sandbox(lenient_judge.evaluate(load("L1-001"), INSPECT, "sim"))
    assert first["pid"] != second["pid"] and first["ppid"] == second["ppid"]


JUDGE = """
import sys, time
from kbmetal.evaluator import zygote
from kbmetal.evaluator.session import SessionConfig, WorkerSession
session = WorkerSession(SessionConfig(), "sim").start()
session.wait_ready()
print(session.pid, zygote._ZYGOTE.proc.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_judge_killed_with_sigkill_takes_its_fork_server_and_candidates_along():
    judge = subprocess.Popen([sys.executable, "-c", JUDGE], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        worker, server = (int(p) for p in judge.stdout.readline().split())
        assert _alive(worker) and _alive(server)
    finally:
        judge.kill()
        judge.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (_alive(worker) or _alive(server)):
        time.sleep(0.05)
    assert not _alive(worker) and not _alive(server)


def test_a_fork_server_that_is_gone_is_replaced():
    from kbmetal.evaluator import zygote
    from kbmetal.evaluator.session import SessionConfig, WorkerSession

    first = WorkerSession(SessionConfig(), "sim").start()
    try:
        first.wait_ready()
        zygote._ZYGOTE.proc.kill()
        zygote._ZYGOTE.proc.wait()
        assert first.proc.wait(timeout=20) is not None  # its candidate went with it
        second = WorkerSession(SessionConfig(), "sim").start()
        try:
            second.wait_ready()
            assert second.launch == "fork" and second.proc.poll() is None
        finally:
            second.discard()
    finally:
        first.discard()
