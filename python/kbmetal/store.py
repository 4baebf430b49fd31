"""The run store: SQLite, one writer, resumable after a kill at any point.

    store = Store("runs/kbmetal.sqlite")
    run = store.create_run("2024-06-01-a", plan=[...])     # the run and all its candidates, at once
    for candidate in store.pending(run):                  # those without a verdict
        store.record_verdict(candidate.id, verdict)       # one transaction per verdict
    store.finish_run(run)

Durability: WAL journal, one transaction per verdict (its findings, timings and any new baselines
with it). A process killed with SIGKILL loses at most the verdicts it had not committed; on
resume, `pending()` returns exactly the candidates without a committed verdict, so nothing
finished is lost or judged twice.

Only the parent process writes (workers and judges send their verdicts back). Every text that
enters the store passes through `sandbox.redact`, so no secret of the environment lands here.

Schema changes are migrations, numbered per namespace. kbmetal's own tables are namespace
"core"; other parts (the generator: requests, responses, costs) add theirs with
`register_migrations("generate", [...])` before opening a store, without touching this file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import os
import pathlib
import platform
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .verdict import Timing, Verdict

Migration = str | Callable[[sqlite3.Connection], None]

_CORE: list[Migration] = [
    # 1: runs, problems, candidates, verdicts, findings, timings, baselines
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL DEFAULT 'running',      -- running | finished
        kind TEXT NOT NULL DEFAULT 'solutions',      -- solutions | generation | eval
        fingerprint TEXT,                            -- what the run evaluates; a rerun resumes it
        backend TEXT, device TEXT, sizes TEXT, dtype TEXT,
        options TEXT,                                -- JSON
        command TEXT, kbmetal_version TEXT, torch_version TEXT, host TEXT
    );
    CREATE INDEX runs_fingerprint ON runs(fingerprint, status);
    CREATE TABLE problems (
        id INTEGER PRIMARY KEY,
        problem_id TEXT NOT NULL, level INTEGER, name TEXT, path TEXT, category TEXT,
        source_sha256 TEXT NOT NULL, source TEXT NOT NULL,
        UNIQUE(problem_id, source_sha256)
    );
    CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_row INTEGER NOT NULL REFERENCES problems(id),
        problem_id TEXT NOT NULL,
        position INTEGER NOT NULL,                   -- order within the run
        source TEXT NOT NULL, source_sha256 TEXT NOT NULL,
        origin TEXT,                                 -- a file path, or the model that wrote it
        model TEXT NOT NULL DEFAULT '',
        attempt INTEGER NOT NULL DEFAULT 0,
        parent_id INTEGER REFERENCES candidates(id), -- the candidate this one refines
        created_at REAL NOT NULL,
        UNIQUE(run_id, problem_id, model, attempt)
    );
    CREATE INDEX candidates_run ON candidates(run_id, position);
    CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY,
        candidate_id INTEGER NOT NULL UNIQUE REFERENCES candidates(id),
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_id TEXT NOT NULL,
        passed INTEGER NOT NULL, flagged INTEGER NOT NULL,
        stage TEXT NOT NULL, error_kind TEXT, reason TEXT,
        max_abs_error REAL, max_rel_error REAL, margin REAL,
        time_ms REAL, timing_is_performance INTEGER, speedup REAL, speedup_compile REAL,
        peak_memory_bytes INTEGER,
        backend TEXT, device TEXT, sizes TEXT, dtype TEXT,
        log_tail TEXT, compile_log TEXT,
        record TEXT NOT NULL,                        -- the whole Verdict as JSON
        created_at REAL NOT NULL
    );
    CREATE INDEX verdicts_run ON verdicts(run_id);
    CREATE TABLE guard_findings (
        id INTEGER PRIMARY KEY,
        verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
        guard TEXT NOT NULL, severity TEXT NOT NULL, message TEXT NOT NULL, details TEXT
    );
    CREATE INDEX guard_findings_verdict ON guard_findings(verdict_id);
    CREATE TABLE timings (
        id INTEGER PRIMARY KEY,
        verdict_id INTEGER NOT NULL REFERENCES verdicts(id),
        subject TEXT NOT NULL, method TEXT NOT NULL, is_performance INTEGER NOT NULL,
        median_ms REAL NOT NULL, min_ms REAL, max_ms REAL, iqr_ms REAL, runs INTEGER, warmup INTEGER,
        envelope_ms REAL, profile TEXT
    );
    CREATE INDEX timings_verdict ON timings(verdict_id);
    CREATE TABLE baselines (
        id INTEGER PRIMARY KEY,
        problem_id TEXT NOT NULL, sizes TEXT NOT NULL, dtype TEXT NOT NULL, device TEXT NOT NULL,
        torch_version TEXT NOT NULL, kind TEXT NOT NULL,   -- eager | compile
        method TEXT NOT NULL, median_ms REAL NOT NULL, min_ms REAL, max_ms REAL, iqr_ms REAL,
        runs INTEGER, warmup INTEGER, created_at REAL NOT NULL,
        UNIQUE(problem_id, sizes, dtype, device, torch_version, kind)
    );
    """,
]

_MIGRATIONS: dict[str, list[Migration]] = {"core": _CORE}


class StoreError(Exception):
    """The store cannot be opened or used as asked; the message says why and what to do."""


def register_migrations(namespace: str, migrations: list[Migration]) -> None:
    """Declare the schema of another part (e.g. "generate"). Migration i (from 1) brings the
    namespace from version i-1 to i; append new ones, never edit old ones."""
    if namespace == "core":
        raise ValueError("the core namespace belongs to kbmetal.store")
    _MIGRATIONS[namespace] = list(migrations)


@dataclass(frozen=True)
class PlannedCandidate:
    """One entry of a run's plan, before it is stored."""

    problem: Any  # kbmetal.problems.Problem
    source: str
    origin: str = ""
    model: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class StoredCandidate:
    id: int
    run_id: str
    problem_id: str
    problem_path: str
    source: str
    origin: str
    model: str
    attempt: int
    position: int


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def new_run_id() -> str:
    now = _dt.datetime.now()
    return now.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


class Store:
    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the store {self.path}: {exc.strerror}") from None
        if self.path.exists() and not self.path.is_file():
            raise StoreError(
                f"{self.path} is not a file; give the path of a store file (e.g. runs/kbmetal.sqlite)"
            )
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a kbmetal store ({exc}); give another path") from None

    # -- schema -----------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        for namespace, migrations in _MIGRATIONS.items():
            with self._transaction():
                row = self.db.execute(
                    "SELECT version FROM schema_versions WHERE namespace = ?", (namespace,)
                ).fetchone()
                current = row["version"] if row else 0
                if current > len(migrations):
                    raise StoreError(
                        f"{self.path} has {namespace} schema version {current}, newer than this kbmetal "
                        f"knows ({len(migrations)}): upgrade kbmetal, or use another store"
                    )
                for version in range(current + 1, len(migrations) + 1):
                    step = migrations[version - 1]
                    if callable(step):
                        step(self.db)
                    else:
                        for statement in _statements(step):
                            self.db.execute(statement)
                    self.db.execute(
                        "INSERT INTO schema_versions(namespace, version) VALUES (?, ?) "
                        "ON CONFLICT(namespace) DO UPDATE SET version = excluded.version",
                        (namespace, version),
                    )

    def schema_version(self, namespace: str = "core") -> int:
        row = self.db.execute(
            "SELECT version FROM schema_versions WHERE namespace = ?", (namespace,)
        ).fetchone()
        return row["version"] if row else 0

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb):
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            return False

    def _transaction(self) -> Store._Tx:
        return Store._Tx(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        plan: Iterable[PlannedCandidate],
        *,
        run_id: str | None = None,
        kind: str = "solutions",
        fingerprint: str | None = None,
        backend: str | None = None,
        device: str | None = None,
        sizes: str | None = None,
        dtype: str | None = None,
        options: dict | None = None,
        command: str | None = None,
    ) -> str:
        """Store a run and its whole plan in one transaction: a kill during planning leaves no
        half-planned run behind."""
        import torch  # the version goes into the record

        from . import __version__

        run_id = run_id or new_run_id()
        now = time.time()
        with self._transaction():
            if self.db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                raise StoreError(
                    f"a run named {run_id!r} exists already in {self.path}; resume it or pick another name"
                )
            self.db.execute(
                "INSERT INTO runs(id, created_at, status, kind, fingerprint, backend, device, sizes, dtype, options,"
                " command, kbmetal_version, torch_version, host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    now,
                    "running",
                    kind,
                    fingerprint,
                    backend,
                    device,
                    sizes,
                    dtype,
                    _json(options or {}),
                    command,
                    __version__,
                    torch.__version__,
                    platform.node(),
                ),
            )
            for position, item in enumerate(plan):
                self._insert_candidate(run_id, item, position, now)
        return run_id

    def add_candidate(self, run_id: str, item: PlannedCandidate, parent_id: int | None = None) -> int:
        """Add one candidate to an existing run (the generator's refinement turns)."""
        now = time.time()
        with self._transaction():
            row = self.db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM candidates WHERE run_id = ?", (run_id,)
            ).fetchone()
            return self._insert_candidate(run_id, item, row["p"], now, parent_id)

    def _insert_candidate(
        self, run_id: str, item: PlannedCandidate, position: int, now: float, parent_id: int | None = None
    ) -> int:
        problem = item.problem
        digest = _sha256(problem.source)
        self.db.execute(
            "INSERT OR IGNORE INTO problems(problem_id, level, name, path, category, source_sha256, source)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                problem.id,
                problem.level,
                problem.name,
                str(problem.path),
                problem.category,
                digest,
                problem.source,
            ),
        )
        problem_row = self.db.execute(
            "SELECT id FROM problems WHERE problem_id = ? AND source_sha256 = ?", (problem.id, digest)
        ).fetchone()["id"]
        source = _redact(item.source)
        cursor = self.db.execute(
            "INSERT INTO candidates(run_id, problem_row, problem_id, position, source, source_sha256, origin, model,"
            " attempt, parent_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                problem_row,
                problem.id,
                position,
                source,
                _sha256(source),
                item.origin,
                item.model,
                item.attempt,
                parent_id,
                now,
            ),
        )
        return int(cursor.lastrowid)

    def find_resumable(self, fingerprint: str) -> str | None:
        """The latest unfinished run with this fingerprint, if any."""
        row = self.db.execute(
            "SELECT id FROM runs WHERE fingerprint = ? AND status = 'running' ORDER BY created_at DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        return row["id"] if row else None

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r["id"] for r in self.db.execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 5")]
            hint = f" (latest: {', '.join(known)})" if known else " (it holds no runs)"
            raise StoreError(f"no run {run_id!r} in {self.path}{hint}")
        data = dict(row)
        data["options"] = json.loads(data["options"] or "{}")
        return data

    def runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM runs ORDER BY created_at")]

    def latest_run(self) -> str | None:
        row = self.db.execute("SELECT id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()
        return row["id"] if row else None

    def finish_run(self, run_id: str) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ?", (time.time(), run_id)
            )

    def candidates(self, run_id: str, pending_only: bool = False) -> list[StoredCandidate]:
        query = (
            "SELECT c.*, p.path AS problem_path FROM candidates c JOIN problems p ON p.id = c.problem_row"
            " WHERE c.run_id = ?"
        )
        if pending_only:
            query += " AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.candidate_id = c.id)"
        query += " ORDER BY c.position"
        return [
            StoredCandidate(
                r["id"],
                r["run_id"],
                r["problem_id"],
                r["problem_path"],
                r["source"],
                r["origin"] or "",
                r["model"],
                r["attempt"],
                r["position"],
            )
            for r in self.db.execute(query, (run_id,))
        ]

    def pending(self, run_id: str) -> list[StoredCandidate]:
        return self.candidates(run_id, pending_only=True)

    # -- verdicts ---------------------------------------------------------------------------

    def record_verdict(
        self, candidate_id: int, verdict: Verdict, torch_version: str | None = None
    ) -> int | None:
        """Store a verdict with its findings, timings and new baselines, atomically. A verdict
        for a candidate that has one already is ignored (returns None): nothing is judged twice."""
        record = json.loads(_redact(json.dumps(verdict.to_dict(), default=str)))
        now = time.time()
        with self._transaction():
            row = self.db.execute("SELECT run_id FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
            if row is None:
                raise StoreError(f"no candidate {candidate_id} in {self.path}")
            if self.db.execute("SELECT 1 FROM verdicts WHERE candidate_id = ?", (candidate_id,)).fetchone():
                return None
            timing = verdict.timing
            cursor = self.db.execute(
                "INSERT INTO verdicts(candidate_id, run_id, problem_id, passed, flagged, stage, error_kind, reason,"
                " max_abs_error, max_rel_error, margin, time_ms, timing_is_performance, speedup, speedup_compile,"
                " peak_memory_bytes, backend, device, sizes, dtype, log_tail, compile_log, record, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    candidate_id,
                    row["run_id"],
                    verdict.problem_id,
                    int(verdict.passed),
                    int(verdict.flagged),
                    verdict.stage,
                    verdict.error_kind,
                    _redact(verdict.reason),
                    _finite(verdict.max_abs_error),
                    _finite(verdict.max_rel_error),
                    _finite(verdict.margin),
                    timing.median_ms if timing else None,
                    int(timing.is_performance) if timing else None,
                    _finite(verdict.speedup),
                    _finite(verdict.speedup_compile),
                    verdict.peak_memory_bytes,
                    verdict.backend,
                    verdict.device,
                    verdict.sizes,
                    verdict.dtype,
                    _redact(verdict.log_tail),
                    _redact(verdict.compile_log),
                    json.dumps(record),
                    now,
                ),
            )
            verdict_id = int(cursor.lastrowid)
            for finding in verdict.guards:
                self.db.execute(
                    "INSERT INTO guard_findings(verdict_id, guard, severity, message, details) VALUES (?,?,?,?,?)",
                    (
                        verdict_id,
                        finding.guard,
                        finding.severity,
                        _redact(finding.message),
                        _json(finding.details),
                    ),
                )
            subjects = ([timing] if timing else []) + list(verdict.baselines.values())
            for t in subjects:
                self._insert_timing(verdict_id, t)
            if verdict.baselines and torch_version:
                for kind, t in verdict.baselines.items():
                    self._insert_baseline(verdict, kind, t, torch_version, now)
        return verdict_id

    def _insert_timing(self, verdict_id: int, t: Timing) -> None:
        self.db.execute(
            "INSERT INTO timings(verdict_id, subject, method, is_performance, median_ms, min_ms, max_ms, iqr_ms, runs,"
            " warmup, envelope_ms, profile) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                verdict_id,
                t.subject,
                t.method,
                int(t.is_performance),
                t.median_ms,
                t.min_ms,
                t.max_ms,
                t.iqr_ms,
                t.runs,
                t.warmup,
                t.envelope_ms,
                _json(t.profile),
            ),
        )

    def _insert_baseline(
        self, verdict: Verdict, kind: str, t: Timing, torch_version: str, now: float
    ) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO baselines(problem_id, sizes, dtype, device, torch_version, kind, method, median_ms,"
            " min_ms, max_ms, iqr_ms, runs, warmup, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                verdict.problem_id,
                sizes_key(verdict.sizes_detail),
                verdict.dtype,
                verdict.device,
                torch_version,
                kind,
                t.method,
                t.median_ms,
                t.min_ms,
                t.max_ms,
                t.iqr_ms,
                t.runs,
                t.warmup,
                now,
            ),
        )

    def baselines(
        self, problem_id: str, sizes: dict, dtype: str, device: str, torch_version: str
    ) -> dict[str, Timing]:
        """Cached eager/compile timings for exactly this problem, sizes, dtype, device and torch."""
        rows = self.db.execute(
            "SELECT * FROM baselines WHERE problem_id = ? AND sizes = ? AND dtype = ? AND device = ? AND torch_version = ?",
            (problem_id, sizes_key(sizes), dtype, device, torch_version),
        )
        return {
            r["kind"]: Timing(
                subject=r["kind"],
                method=r["method"],
                is_performance=True,
                median_ms=r["median_ms"],
                min_ms=r["min_ms"],
                max_ms=r["max_ms"],
                iqr_ms=r["iqr_ms"],
                runs=r["runs"],
                warmup=r["warmup"],
            )
            for r in rows
        }

    def verdicts(self, run_id: str) -> list[dict[str, Any]]:
        """Every stored verdict of a run, in plan order, each with its candidate's identity."""
        rows = self.db.execute(
            "SELECT v.*, c.origin, c.model, c.attempt, c.position, p.level, p.name AS problem_name, p.category"
            " FROM verdicts v JOIN candidates c ON c.id = v.candidate_id JOIN problems p ON p.id = c.problem_row"
            " WHERE v.run_id = ? ORDER BY c.position",
            (run_id,),
        )
        result = []
        for r in rows:
            data = dict(r)
            data["record"] = json.loads(data["record"])
            data["guards"] = [
                dict(g)
                for g in self.db.execute(
                    "SELECT guard, severity, message FROM guard_findings WHERE verdict_id = ? ORDER BY id",
                    (r["id"],),
                )
            ]
            result.append(data)
        return result

    def verdict_objects(self, run_id: str) -> Iterator[tuple[dict[str, Any], Verdict]]:
        for row in self.verdicts(run_id):
            yield row, Verdict.from_dict(row["record"])

    # -- export -----------------------------------------------------------------------------

    CSV_COLUMNS = (
        "problem_id", "level", "problem_name", "model", "attempt", "origin", "passed", "flagged", "stage",
        "error_kind", "reason", "max_abs_error", "max_rel_error", "margin", "time_ms", "timing_is_performance",
        "speedup", "speedup_compile", "peak_memory_bytes", "backend", "device", "sizes", "dtype", "guards",
    )  # fmt: skip

    def export_json(self, run_id: str) -> dict[str, Any]:
        run = self.run(run_id)
        verdicts = self.verdicts(run_id)
        return {
            "run": run,
            "candidates": len(self.candidates(run_id)),
            "verdicts": [
                {**{k: v for k, v in row.items() if k != "record"}, "verdict": row["record"]}
                for row in verdicts
            ],
        }

    def export_csv(self, run_id: str) -> str:
        self.run(run_id)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in self.verdicts(run_id):
            flat = dict(row)
            flat["guards"] = "; ".join(f"{g['severity']}:{g['guard']}" for g in row["guards"])
            writer.writerow(flat)
        return out.getvalue()


def sizes_key(sizes: dict | None) -> str:
    return json.dumps(sizes or {}, sort_keys=True, separators=(",", ":"))


def _redact(text: str | None) -> str | None:
    from .evaluator.sandbox import redact

    return redact(text)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no triggers with inner semicolons here)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
