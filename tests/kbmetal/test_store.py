"""The run store: plan, verdicts, resume, migrations, exports, and no secrets."""

import json
import sqlite3

import pytest
from kbm_helpers import load
from kbmetal.store import (
    _MIGRATIONS,
    PlannedCandidate,
    Store,
    StoreError,
    register_migrations,
)
from kbmetal.verdict import Comparison, GuardFinding, Timing, TrialResult, Verdict


def _verdict(pid="L1-001", passed=True, **kw):
    v = Verdict(
        problem_id=pid,
        backend="sim",
        device="sim",
        sizes="small",
        dtype="float32",
        passed=passed,
        stage="complete" if passed else "correctness",
        reason="ok" if passed else "mismatch",
        **kw,
    )
    v.trials = [
        TrialResult(
            "t1",
            "main",
            "native",
            "fresh",
            passed,
            [Comparison(0, passed, [4], 4, 0 if passed else 2, 0.5, [1], 0.1, [1], 1e-5, 1e-6, 0.2)],
        )
    ]
    v.guards = [GuardFinding("torch-ops", "info", "partial")]
    v.timing = Timing("candidate", "cpu-clock", False, 1.0, 0.9, 1.2, 0.1, 3, 1)
    v.margin, v.max_abs_error = 0.2, 0.5
    return v


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "runs" / "kb.sqlite") as s:
        yield s


def _plan(n=3):
    problems = [load(p) for p in ("L1-001", "L1-002", "L1-003")]
    return [PlannedCandidate(problems[i % 3], f"# solution {i}\n", origin=f"s{i}.py") for i in range(n)]


def test_plan_verdicts_and_pending(store):
    run = store.create_run(_plan(), run_id="r1", fingerprint="fp", backend="sim")
    assert store.run(run)["status"] == "running"
    pending = store.pending(run)
    assert [c.position for c in pending] == [0, 1, 2]
    assert store.record_verdict(pending[0].id, _verdict()) is not None
    assert [c.position for c in store.pending(run)] == [1, 2]
    # a second verdict for the same candidate is ignored: nothing is judged twice
    assert store.record_verdict(pending[0].id, _verdict(passed=False)) is None
    rows = store.verdicts(run)
    assert len(rows) == 1 and rows[0]["passed"] == 1 and rows[0]["margin"] == 0.2
    assert rows[0]["record"]["trials"][0]["comparisons"][0]["mismatched"] == 0
    assert rows[0]["guards"][0]["guard"] == "torch-ops"
    assert store.find_resumable("fp") == run
    store.finish_run(run)
    assert store.find_resumable("fp") is None and store.run(run)["status"] == "finished"


def test_verdict_round_trip(store):
    run = store.create_run(_plan(1), run_id="r1")
    c = store.pending(run)[0]
    store.record_verdict(c.id, _verdict(passed=False))
    ((row, verdict),) = list(store.verdict_objects(run))
    assert verdict.trials[0].comparisons[0].mismatched == 2 and not verdict.passed
    assert verdict.timing.median_ms == 1.0


def test_duplicate_run_and_unknown_run_are_clear_errors(store):
    store.create_run(_plan(1), run_id="r1")
    with pytest.raises(StoreError, match="exists already"):
        store.create_run(_plan(1), run_id="r1")
    with pytest.raises(StoreError, match="no run 'nope'.*latest: r1"):
        store.run("nope")


def test_baselines_are_cached_per_problem_sizes_dtype_device_and_torch(store):
    run = store.create_run(_plan(1), run_id="r1")
    v = _verdict()
    v.sizes_detail = {"batch_size": 16, "dim": 256}
    v.baselines = {"eager": Timing("eager", "cuda-events", True, 2.0, 1.9, 2.2, 0.1, 20, 5)}
    store.record_verdict(store.pending(run)[0].id, v, torch_version="2.13.0")
    found = store.baselines("L1-001", {"dim": 256, "batch_size": 16}, "float32", "sim", "2.13.0")
    assert found["eager"].median_ms == 2.0
    assert store.baselines("L1-001", {"dim": 512, "batch_size": 16}, "float32", "sim", "2.13.0") == {}
    assert store.baselines("L1-001", {"dim": 256, "batch_size": 16}, "float32", "sim", "2.14.0") == {}


def test_exports(store, tmp_path):
    run = store.create_run(_plan(2), run_id="r1")
    for c, passed in zip(store.pending(run), (True, False)):
        store.record_verdict(c.id, _verdict(c.problem_id, passed))
    data = store.export_json(run)
    assert data["run"]["id"] == "r1" and len(data["verdicts"]) == 2
    json.dumps(data, default=str)
    lines = store.export_csv(run).strip().splitlines()
    assert lines[0].startswith("problem_id,level,problem_name")
    assert len(lines) == 3 and "info:torch-ops" in lines[1]


def test_secrets_never_reach_the_store(store, monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "sk-verysecretvalue123")
    run = store.create_run([PlannedCandidate(load("L1-001"), "KEY = 'sk-verysecretvalue123'\n")], run_id="r1")
    v = _verdict(passed=False)
    v.reason = "printed sk-verysecretvalue123"
    v.log_tail = "env: SOME_PROVIDER_API_KEY=sk-verysecretvalue123"
    store.record_verdict(store.pending(run)[0].id, v)
    dump = "\n".join(store.db.iterdump())
    assert "sk-verysecretvalue123" not in dump and "[redacted]" in dump


def test_migrations_run_once_in_order_and_newer_stores_are_refused(tmp_path):
    path = tmp_path / "kb.sqlite"
    with Store(path) as s:
        assert s.schema_version("core") == len(_MIGRATIONS["core"])
        run = s.create_run(_plan(1), run_id="old")
    applied = []
    try:
        register_migrations(
            "example",  # not "generate": the real generator registers that one when imported
            [
                "CREATE TABLE requests (id INTEGER PRIMARY KEY, candidate_id INTEGER, model TEXT, tokens INTEGER)",
                lambda db: applied.append("2") or db.execute("ALTER TABLE requests ADD COLUMN cost REAL"),
            ],
        )
        with Store(path) as s:  # an existing store gains the new namespace, data intact
            assert s.schema_version("example") == 2 and applied == ["2"]
            assert len(s.candidates(run)) == 1
            s.db.execute("INSERT INTO requests(candidate_id, model, tokens, cost) VALUES (1, 'm', 10, 0.1)")
        with Store(path) as s:  # and never runs a migration twice
            assert applied == ["2"] and s.schema_version("example") == 2
    finally:
        _MIGRATIONS.pop("example", None)
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_versions SET version = 99 WHERE namespace = 'core'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this kbmetal knows"):
        Store(path)


def test_not_a_store(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a kbmetal store"):
        Store(bad)
    with pytest.raises(StoreError, match="not a file"):
        Store(tmp_path)
