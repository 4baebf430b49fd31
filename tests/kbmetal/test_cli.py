"""`python -m kbmetal.bench`: exit codes, JSON, messages without tracebacks, runs, reports, the
main job, and resuming a run killed with SIGKILL."""

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from kbm_helpers import PROBLEMS, problem_path
from kbm_kernels import candidate
from procenv import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _env(**extra):
    return child_env(**extra)


def bench(*args, cwd=None, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "kbmetal.bench", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _env(),
        timeout=timeout,
    )


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys):
    """`python -m kbmetal.bench ARGS` in this process (candidates still run in their own)."""
    from kbmetal.bench import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def _user_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") or "usage:" in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture(scope="module")
def solutions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    for pid in ("L1-001", "L1-002", "L1-004"):
        (folder / f"{pid}.py").write_text(candidate(pid))
    # named by the problem's file stem, and wrong on purpose (no kernel launched)
    (folder / "003_softmax.py").write_text(
        "import torch\nclass ModelNew(torch.nn.Module):\n"
        "    def forward(self, x):\n        return torch.softmax(x, -1)\n"
    )
    (folder / "notes.py").write_text("# matches no problem\n")
    return folder


def test_eval_json_pass_and_fail(tmp_path, solutions):
    r = bench("eval", problem_path("L1-001"), solutions / "L1-001.py", "--backend", "sim", "--json")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    for key in ("passed", "stage", "reason", "max_abs_error", "guards", "speedup"):
        assert key in record
    assert record["passed"] is True and record["stage"] == "complete" and record["speedup"] is None
    r = bench("eval", problem_path("L1-003"), solutions / "003_softmax.py", "--json")
    assert r.returncode == 1
    record = json.loads(r.stdout)
    assert record["passed"] is False and any(g["guard"] == "no-kernel" for g in record["guards"])


def test_eval_human_readable_failure(cli, solutions):
    r = cli("eval", problem_path("L1-003"), solutions / "003_softmax.py")
    assert r.returncode == 1 and "FAIL at correctness" in r.stdout and "[fail] no-kernel" in r.stdout


def test_user_errors_exit_2_with_one_line(cli, tmp_path, solutions):
    # one through a real process: the exit code and the absence of a traceback hold there too
    _user_error(bench("eval", tmp_path / "nope.py", solutions / "L1-001.py"), "no such problem")
    _user_error(cli("eval", problem_path("L1-001"), tmp_path / "missing.py"), "no such solution file")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    _user_error(cli("eval", problem_path("L1-001"), binary), "not a UTF-8 text file")
    _user_error(cli("eval", problem_path("L1-001"), solutions / "L1-001.py", "--size", "dim"), "NAME=VALUE")
    _user_error(cli("eval", problem_path("L1-001"), solutions / "L1-001.py", "--size", "nosuch=3"), "nosuch")
    _user_error(cli("eval", problem_path("L1-001"), solutions / "L1-001.py", "--backend", "vulkan"))
    broken = tmp_path / "level1" / "001_broken.py"
    broken.parent.mkdir()
    broken.write_text(
        "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
    )
    _user_error(cli("eval", broken, solutions / "L1-001.py"), "001_broken.py", "get_inputs")
    _user_error(cli("run", "--solutions", tmp_path / "none", "--problems-dir", PROBLEMS), "no such folder")
    _user_error(
        cli("run", "--solutions", solutions, "--problems-dir", PROBLEMS, "--problems", "L9-001..L9-002"),
        "no problem matches",
    )
    _user_error(
        cli("run", "--solutions", solutions, "--problems-dir", PROBLEMS, "--problems", "L1-004..L1-001"),
        "backwards",
    )
    _user_error(cli("--store", tmp_path / "nostore.sqlite", "report"), "no run store")


def test_run_then_report(cli, tmp_path, solutions, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "runs" / "kb.sqlite"
    r = cli(
        "--store",
        store,
        "run",
        "--solutions",
        solutions,
        "--problems-dir",
        PROBLEMS,
        "--level",
        "1",
        "--run-id",
        "cli",
        "--concurrency",
        "2",
    )
    assert r.returncode == 1, r.stderr  # one candidate fails on purpose
    assert "L1-001" in r.stdout and "FAIL" in r.stdout and "fast_0" in r.stdout
    assert "match no problem: notes.py" in r.stderr
    folder = tmp_path / "runs" / "cli"
    for name in ("report.md", "report.html", "verdicts.json", "verdicts.csv"):
        assert (folder / name).is_file()
    exported = json.loads((folder / "verdicts.json").read_text())
    assert sorted(v["problem_id"] for v in exported["verdicts"]) == ["L1-001", "L1-002", "L1-003", "L1-004"]
    r = cli("--store", store, "report", "cli", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["run"]["id"] == "cli"
    r = cli("--store", store, "report", "--format", "csv")
    assert r.returncode == 0 and r.stdout.count("\n") == 5
    _user_error(cli("--store", store, "report", "nosuch"), "no run 'nosuch'")
    # the same command again finds the finished run's work and starts a new run
    r = cli(
        "--store",
        store,
        "run",
        "--solutions",
        solutions,
        "--problems-dir",
        PROBLEMS,
        "--problems",
        "L1-001",
        "--no-timing",
    )
    assert r.returncode == 0, r.stderr


def test_lint_passes_through(cli, tmp_path):
    r = cli("lint", PROBLEMS / "level1" / "001_relu.py", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["id"] == "L1-001"
    _user_error(cli("lint", tmp_path / "missing"))


def test_main_job_with_a_solutions_folder(cli, tmp_path, monkeypatch):
    folder = tmp_path / "bundled"
    folder.mkdir()
    for pid in ("L1-001", "L1-004"):
        (folder / f"{pid}.py").write_text(candidate(pid))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KBMETAL_SOLUTIONS_DIR", str(folder))
    monkeypatch.setenv("KBMETAL_PROBLEMS_DIR", str(PROBLEMS))
    r = cli()
    assert r.returncode == 0, r.stderr
    assert "main job: 2 bundled solutions on sim" in r.stderr
    assert "PASS" in r.stdout and "(sim)" in r.stdout
    assert (tmp_path / "runs" / "kbmetal.sqlite").is_file()
    reports = list((tmp_path / "runs").glob("*/report.html"))
    assert len(reports) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("KBMETAL_SOLUTIONS_DIR", str(empty))
    _user_error(cli(), "no solution file matches")


def _verdicts(store):
    db = sqlite3.connect(store)
    try:
        return db.execute(
            "SELECT candidate_id, id, created_at FROM verdicts ORDER BY candidate_id"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_resume_after_kill_9(tmp_path):
    folder = tmp_path / "slow"
    folder.mkdir()
    for pid in ("L1-001", "L1-002", "L1-003", "L1-004"):
        # each forward sleeps, so the run is still going when it is killed
        (folder / f"{pid}.py").write_text(
            candidate(pid, "time.sleep(0.4)\nreturn compute(self, *inputs)", header="import time")
        )
    store = tmp_path / "kb.sqlite"
    args = [
        sys.executable,
        "-m",
        "kbmetal.bench",
        "--store",
        str(store),
        "run",
        "--solutions",
        str(folder),
        "--problems-dir",
        str(PROBLEMS),
        "--concurrency",
        "1",
        "--no-timing",
    ]
    proc = subprocess.Popen(
        args,
        env=_env(),
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while len(_verdicts(store)) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    before = _verdicts(store)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= len(before) < 4, "the run should be killed part-way"
    time.sleep(0.5)
    r = subprocess.run(args, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "already judged" in r.stderr
    after = _verdicts(store)
    assert len(after) == 4 and len({c for c, _, _ in after}) == 4  # every candidate once
    kept = {c: (i, t) for c, i, t in after}
    assert all(kept[c] == (i, t) for c, i, t in before)  # finished work kept, not redone
    db = sqlite3.connect(store)
    assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    db.close()
