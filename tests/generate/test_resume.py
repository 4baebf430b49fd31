"""A generation run killed with SIGKILL resumes without asking a finished request again or judging a
candidate twice: killed once while a request is in flight, once between a stored response and its
verdict."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import gen_kernels as K
import pytest
from gen_helpers import OPENAI_KEY, bench_process, files_containing, subprocess_env
from scripted_server import Reply, code, held

pytestmark = pytest.mark.timeout(400)


def _count(store, query: str) -> int:
    if not store.exists():
        return 0
    db = sqlite3.connect(store, timeout=10)
    try:
        return db.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        db.close()


def _wait_for(condition, process, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the run ended (code {process.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()


def test_killed_run_resumes_without_repeating_requests_or_verdicts(tmp_path, server):
    store = tmp_path / "store.sqlite"
    env = subprocess_env(OPENAI_API_KEY=OPENAI_KEY)
    args = ("--store", store, "run", "--models", "openai:writer", "--base-url", server.openai_url,
            "--problems", "L1-012,L1-013", "--backend", "sim", "--turns", "1", "--executor", "serial")
    asked: dict[str, int] = {"L1-012": 0, "L1-013": 0}
    answer_013 = {"reply": held()}

    def respond(request) -> Reply:
        problem = "L1-012" if "problem L1-012" in request.last_user else "L1-013"
        asked[problem] += 1
        # L1-013 gets the ReLU module: wrong for leaky ReLU, and any verdict will do here
        return code(K.module("scalar")) if problem == "L1-012" else answer_013["reply"]

    server.fallback = respond

    # 1: killed while L1-013's request is in flight (its answer is held back)
    first = bench_process(*args, env=env)
    _wait_for(lambda: _count(store, "SELECT COUNT(*) FROM verdicts") == 1 and asked["L1-013"] == 1, first,
              "L1-012's verdict and L1-013's request")
    _kill(first)
    db = sqlite3.connect(store)
    [(run_id, status)] = db.execute("SELECT id, status FROM runs").fetchall()
    [(verdict_id, judged_at)] = db.execute("SELECT id, created_at FROM verdicts").fetchall()
    db.close()
    assert status == "running"

    # 2: killed once L1-013's response is stored, most likely before its verdict
    answer_013["reply"] = code(K.module("scalar"))
    second = bench_process(*args, env=env)
    _wait_for(lambda: _count(store, "SELECT COUNT(*) FROM gen_requests WHERE problem_id = 'L1-013'") == 1, second,
              "L1-013's stored response")
    _kill(second)
    assert asked == {"L1-012": 1, "L1-013": 2}

    # 3: finishes, asking nothing
    third = bench_process(*args, env=env)
    out, err = third.communicate(timeout=300)
    assert third.returncode == 1, out + err  # L1-013 has no correct kernel: leaky ReLU is not ReLU
    assert f"resuming run {run_id}" in err
    assert asked == {"L1-012": 1, "L1-013": 2}, "a finished request was sent again"

    db = sqlite3.connect(store)
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "finished"
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM gen_requests WHERE status = 'ok'").fetchone()[0] == 2
    # L1-012's verdict is the one from the first process: it was not judged again
    assert db.execute("SELECT id, created_at FROM verdicts WHERE problem_id = 'L1-012'").fetchone() == (verdict_id, judged_at)
    db.close()
    assert files_containing(tmp_path, OPENAI_KEY) == []
