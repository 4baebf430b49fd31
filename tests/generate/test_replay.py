"""The replay provider: a run judged again from saved solutions or from a stored run, without any
model."""

from __future__ import annotations

import sqlite3

import gen_kernels as K
import pytest
from gen_helpers import fake_judge
from gen_helpers import specs as _specs
from scripted_server import code

pytestmark = pytest.mark.timeout(300)


def test_replay_a_folder_of_solutions(tmp_path, cli):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / f"{K.PROBLEM}.py").write_text(K.module("vector4"))
    store = tmp_path / "store.sqlite"
    r = cli("--store", store, "run", "--models", f"replay:{folder}", "--problems", "L1-012,L1-013",
            "--backend", "sim", "--turns", "2", "--executor", "serial")
    assert r.returncode == 1, r.output  # L1-013 has no saved solution
    db = sqlite3.connect(store)
    rows = db.execute("SELECT c.problem_id, c.attempt, v.passed FROM candidates c JOIN verdicts v"
                      " ON v.candidate_id = c.id").fetchall()
    assert rows == [(K.PROBLEM, 1, 1)]
    [(cost, tokens)] = db.execute("SELECT cost_usd, input_tokens FROM gen_requests").fetchall()
    assert cost == 0.0 and tokens == 0
    db.close()


def test_replay_a_stored_run_judges_its_answers_again(tmp_path, server, keys):
    from kbmetal.generate import generate
    from kbmetal.generate.config import Config, resolve_models

    server.script("writer", code(K.compile_error()), code(K.module("scalar")))
    original = generate([K.PROBLEM], _specs(server, "writer"), store=tmp_path / "first.sqlite", backend="sim",
                        turns=2, judges=fake_judge(lambda source: "max(x[i], 0.0f);" in source))
    assert original.selections[K.PROBLEM].chosen.attempt == 2
    asked = len(server.requests)

    replays = resolve_models([f"replay:{tmp_path / 'first.sqlite'}"], Config(), {})
    outcome = generate([K.PROBLEM], replays, store=tmp_path / "second.sqlite", backend="sim", turns=2,
                       judges="serial")
    assert len(server.requests) == asked  # no model was asked
    chosen = outcome.selections[K.PROBLEM].chosen
    assert (chosen.model, chosen.attempt) == ("replay:openai:writer", 2)
    db = sqlite3.connect(tmp_path / "second.sqlite")
    verdicts = db.execute("SELECT c.attempt, v.stage, v.passed FROM candidates c JOIN verdicts v"
                          " ON v.candidate_id = c.id ORDER BY c.attempt").fetchall()
    db.close()
    assert verdicts == [(1, "import", 0), (2, "complete", 1)]  # judged for real this time


def test_replay_errors_are_clear(tmp_path):
    from kbmetal.generate.config import Config, resolve_models
    from kbmetal.generate.errors import ConfigError
    from kbmetal.generate.providers import expand_specs

    (tmp_path / "notes.txt").write_text("hello")
    for target, message in ((tmp_path / "missing", "neither a folder of solutions nor a kbmetal store"),
                            (tmp_path / "notes.txt", "neither a folder of solutions nor a kbmetal store")):
        with pytest.raises(ConfigError, match=message):
            expand_specs(resolve_models([f"replay:{target}"], Config(), {}))
