"""Generation's tables in the run store, and the reads and writes the loop needs.

Registered as the store's "generate" namespace (kbmetal.store.register_migrations), so the
evaluator's schema is untouched and an older store gains these tables when first opened here.

    gen_requests    one row per answered (or finally failed) request: the prompt, the response,
                    tokens, cost, latency, tries, whether the cache answered; keyed by run, problem,
                    model and attempt (the candidates table's key)
    gen_selections  the supervisor's choice per problem, with its reasons

Every text passes through keys.redact before it is written. Each write is one transaction, and
a response is written before its candidate is judged: a run killed at any point loses at most the
request in flight.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..store import Store, register_migrations
from ..verdict import Verdict
from .keys import redact

MIGRATIONS = [
    """
    CREATE TABLE gen_requests (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_id TEXT NOT NULL,
        model TEXT NOT NULL,                 -- the model's label in the run
        attempt INTEGER NOT NULL,            -- the candidate's attempt number (1, 2, ...)
        round INTEGER NOT NULL DEFAULT 1,
        provider TEXT NOT NULL, provider_model TEXT NOT NULL, base_url TEXT,
        request_key TEXT NOT NULL,           -- SHA-256 of the request: the response cache's key
        prompt TEXT NOT NULL,                -- the messages, JSON
        params TEXT NOT NULL,                -- temperature, max tokens... JSON (never a key)
        status TEXT NOT NULL,                -- ok | error (retry on resume) | rejected (final)
        response TEXT, finish_reason TEXT, served_model TEXT,
        input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER, cached_input_tokens INTEGER,
        cost_usd REAL,                       -- NULL: no price configured
        latency_s REAL, tries INTEGER, cached INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        candidate_id INTEGER REFERENCES candidates(id),
        created_at REAL NOT NULL
    );
    CREATE INDEX gen_requests_chain ON gen_requests(run_id, problem_id, model, attempt);
    CREATE TABLE gen_selections (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_id TEXT NOT NULL,
        candidate_id INTEGER REFERENCES candidates(id),   -- NULL: no candidate passed
        model TEXT, attempt INTEGER,
        reasons TEXT NOT NULL,               -- JSON: the ranking and why each candidate was or was not chosen
        created_at REAL NOT NULL,
        UNIQUE(run_id, problem_id)
    );
    """,
]

register_migrations("generate", MIGRATIONS)


@contextlib.contextmanager
def _transaction(store: Store) -> Iterator[sqlite3.Connection]:
    store.db.execute("BEGIN IMMEDIATE")
    try:
        yield store.db
    except BaseException:
        store.db.execute("ROLLBACK")
        raise
    store.db.execute("COMMIT")


@dataclass
class RequestRecord:
    run_id: str
    problem_id: str
    model: str
    attempt: int
    round: int
    provider: str
    provider_model: str
    base_url: str | None
    request_key: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    status: str  # ok | error | rejected
    response: str | None = None
    finish_reason: str | None = None
    served_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float | None = 0.0
    latency_s: float = 0.0
    tries: int = 0
    cached: bool = False
    error: str | None = None


def insert_request(store: Store, record: RequestRecord) -> int:
    with _transaction(store) as db:
        cursor = db.execute(
            "INSERT INTO gen_requests(run_id, problem_id, model, attempt, round, provider, provider_model, base_url,"
            " request_key, prompt, params, status, response, finish_reason, served_model, input_tokens,"
            " output_tokens, reasoning_tokens, cached_input_tokens, cost_usd, latency_s, tries, cached, error,"
            " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.run_id, record.problem_id, record.model, record.attempt, record.round, record.provider,
             record.provider_model, record.base_url, record.request_key,
             redact(json.dumps(record.messages, ensure_ascii=False)), redact(json.dumps(record.params, sort_keys=True)),
             record.status, redact(record.response), record.finish_reason, record.served_model, record.input_tokens,
             record.output_tokens, record.reasoning_tokens, record.cached_input_tokens, record.cost_usd,
             record.latency_s, record.tries, int(record.cached), redact(record.error), time.time()),
        )
        return int(cursor.lastrowid)


def link_candidate(store: Store, request_id: int, candidate_id: int) -> None:
    with _transaction(store) as db:
        db.execute("UPDATE gen_requests SET candidate_id = ? WHERE id = ?", (candidate_id, request_id))


def request_rows(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in store.db.execute("SELECT * FROM gen_requests WHERE run_id = ? ORDER BY id", (run_id,))]


def latest_answers(store: Store, run_id: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Per (problem, model, attempt): the ok row if there is one, else the latest row."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for row in request_rows(store, run_id):
        key = (row["problem_id"], row["model"], row["attempt"])
        if key not in out or out[key]["status"] != "ok":
            out[key] = row
    return out


def candidates_by_key(store: Store, run_id: str) -> dict[tuple[str, str, int], tuple[int, str]]:
    """(problem, model, attempt) -> (candidate id, source)."""
    return {
        (r["problem_id"], r["model"], r["attempt"]): (r["id"], r["source"])
        for r in store.db.execute(
            "SELECT id, problem_id, model, attempt, source FROM candidates WHERE run_id = ?", (run_id,))
    }


def verdict_of(store: Store, candidate_id: int) -> Verdict | None:
    """The stored verdict (as stored: redacted), or None."""
    row = store.db.execute("SELECT record FROM verdicts WHERE candidate_id = ?", (candidate_id,)).fetchone()
    return Verdict.from_dict(json.loads(row["record"])) if row else None


def record_selection(store: Store, run_id: str, problem_id: str, candidate_id: int | None, model: str | None,
                     attempt: int | None, reasons: dict[str, Any]) -> None:
    with _transaction(store) as db:
        db.execute(
            "INSERT INTO gen_selections(run_id, problem_id, candidate_id, model, attempt, reasons, created_at)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(run_id, problem_id) DO UPDATE SET candidate_id = excluded.candidate_id,"
            " model = excluded.model, attempt = excluded.attempt, reasons = excluded.reasons,"
            " created_at = excluded.created_at",
            (run_id, problem_id, candidate_id, model, attempt, redact(json.dumps(reasons, sort_keys=True, default=str)),
             time.time()),
        )


def selections(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    out = {}
    for row in store.db.execute("SELECT * FROM gen_selections WHERE run_id = ? ORDER BY problem_id", (run_id,)):
        data = dict(row)
        data["reasons"] = json.loads(data["reasons"])
        out[data["problem_id"]] = data
    return out
