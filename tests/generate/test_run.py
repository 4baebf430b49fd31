"""`python -m kbmetal.bench run --models ...` end to end: the real SDKs against the scripted server,
real MSL kernels judged on the sim.

- a rate-limited request is retried; a kernel that does not compile, then one with wrong values,
  then a correct one, each turn fed the verdict on the previous one;
- no key in the store, its WAL, the log, the response cache, the reports or the output, and none in
  the candidate's environment;
- a response without code is a verdict (stage "extract") and feedback, not a crash;
- an unreachable provider is a clear error naming its URL, the other model's work is kept, and the
  same command later resumes the run and finishes it.
"""

from __future__ import annotations

import json
import sqlite3

import gen_kernels as K
import pytest
from gen_helpers import files_containing
from scripted_server import ScriptedServer, code, free_port, rate_limited, text

pytestmark = pytest.mark.timeout(300)


def _db(path):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    return db


def test_broken_then_fixed_after_feedback_with_a_rate_limit_and_no_key_anywhere(tmp_path, server, keys, cli):
    server.script("kernel-writer",
                  rate_limited(retry_after=1),
                  code(K.compile_error()),
                  code(K.wrong_values(), prose="Fixed the missing semicolon."),
                  code(K.module("scalar", env_check=True), prose="Now clamping at zero."))
    store = tmp_path / "runs" / "store.sqlite"
    r = cli("--store", store, "run", "--models", "openai:kernel-writer", "--base-url", server.openai_url,
            "--problems", K.PROBLEM, "--backend", "sim", "--turns", "4", "--executor", "serial",
            "--input-price", "2", "--output-price", "8")
    assert r.returncode == 0, r.output

    # the 429 was retried: four HTTP requests, the first two identical
    sent = server.requests_for("kernel-writer")
    assert len(sent) == 4
    assert sent[0].body == sent[1].body
    assert all(req.key == keys["openai"] for req in sent)  # the key was used, in the header only

    # turn 2 saw the compiler's own words, turn 3 the mismatch in assert_close's terms
    second, third = sent[2].last_user, sent[3].last_user
    assert "FAILED at the import stage (compile)" in second
    assert "expected ';'" in second and "kernel.metal:" in second
    assert "mismatched elements" in third and "greatest absolute difference" in third
    assert "at index" in third
    # the conversation carries the earlier answer as code, then the verdict on it
    assert sent[3].messages[-2]["role"] == "assistant" and "max(x[i], 0.5f)" in sent[3].messages[-2]["content"]

    db = _db(store)
    rows = db.execute("SELECT attempt, status, tries, cost_usd, input_tokens, output_tokens, candidate_id"
                      " FROM gen_requests ORDER BY attempt").fetchall()
    assert [(row["attempt"], row["status"]) for row in rows] == [(1, "ok"), (2, "ok"), (3, "ok")]
    assert rows[0]["tries"] == 2 and rows[1]["tries"] == 1
    for row in rows:  # cost = tokens x price, per request
        assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 2 + row["output_tokens"] * 8) / 1e6)
    verdicts = db.execute("SELECT c.attempt, v.passed, v.stage, v.error_kind FROM verdicts v JOIN candidates c"
                          " ON c.id = v.candidate_id ORDER BY c.attempt").fetchall()
    assert [tuple(v) for v in verdicts] == [(1, 0, "import", "compile"), (2, 0, "correctness", "mismatch"),
                                            (3, 1, "complete", None)]
    selection = db.execute("SELECT attempt, reasons FROM gen_selections").fetchone()
    assert selection["attempt"] == 3
    assert json.loads(selection["reasons"])["ranking"][0]["why"] == "chosen"
    db.close()

    # no key in anything written: store (and WAL), log, cache, reports; nor in what was printed
    for key in keys.values():
        assert files_containing(tmp_path, key) == []
        assert files_containing(tmp_path, key[-12:]) == []  # not even a part of it
        assert key not in r.output
    assert (tmp_path / "runs" / "response-cache").is_dir()
    assert "fast_0" in r.stderr + r.stdout and "openai:kernel-writer" in r.stdout


def test_a_response_without_code_is_a_verdict_and_feedback(tmp_path, server, keys, cli):
    server.script("claude-test",
                  text("I would write a kernel that clamps every element at zero, one thread per element."),
                  code(K.module("vector4")))
    store = tmp_path / "store.sqlite"
    r = cli("--store", store, "run", "--models", "anthropic:claude-test", "--base-url", server.anthropic_url,
            "--problems", K.PROBLEM, "--backend", "sim", "--turns", "2", "--executor", "serial")
    assert r.returncode == 0, r.output
    first, second = server.requests_for("claude-test")
    assert first.protocol == "anthropic" and first.messages[0]["role"] == "system"
    assert first.key == keys["anthropic"]
    assert "No solution could be taken from your answer" in second.last_user
    assert "one thread per element" in second.messages[-2]["content"]  # its prose, echoed back
    db = _db(store)
    stages = db.execute("SELECT c.attempt, c.source, v.stage, v.error_kind, v.reason FROM verdicts v"
                        " JOIN candidates c ON c.id = v.candidate_id ORDER BY c.attempt").fetchall()
    assert stages[0]["stage"] == "extract" and stages[0]["error_kind"] == "extract" and stages[0]["source"] == ""
    assert "no code block" in stages[0]["reason"]
    assert stages[1]["stage"] == "complete"
    db.close()


def test_unreachable_provider_keeps_work_and_the_same_command_resumes(tmp_path, server, keys, cli):
    port = free_port()
    late_url = f"http://127.0.0.1:{port}/v1"
    config = tmp_path / "models.toml"
    config.write_text(f"""
[defaults]
max_retries = 1

[providers.late]
kind = "openai"
base_url = "{late_url}"
key_env = ""

[providers.here]
kind = "openai"
base_url = "{server.openai_url}"
key_env = "OPENAI_API_KEY"

[[models]]
spec = "here:model-a"

[[models]]
spec = "late:model-b"
""")
    server.script("model-a", code(K.module("scalar")))
    store = tmp_path / "store.sqlite"
    args = ("--store", store, "run", "--config", config, "--problems", K.PROBLEM, "--backend", "sim",
            "--turns", "2", "--executor", "serial")
    r = cli(*args)
    assert r.returncode == 3, r.output
    assert f"cannot reach openai provider at {late_url}" in r.stderr
    assert "rerun the same command" in r.stderr
    db = _db(store)
    [run] = db.execute("SELECT id, status FROM runs").fetchall()
    assert run["status"] == "running"
    assert db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 1  # model-a's work is stored
    assert db.execute("SELECT status FROM gen_requests WHERE model = 'late:model-b'").fetchone()[0] == "error"
    db.close()

    with ScriptedServer(port=port) as late:
        late.script("model-b", code(K.module("vector4")))
        again = cli(*args)
    assert again.returncode == 0, again.output
    assert f"resuming run {run['id']}" in again.stderr
    assert len(server.requests_for("model-a")) == 1  # model-a's finished chain was not asked again
    assert len(late.requests_for("model-b")) == 1
    db = _db(store)
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run["id"],)).fetchone()[0] == "finished"
    assert db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0] == 2
    db.close()


def test_a_missing_key_fails_before_any_request(tmp_path, server, monkeypatch, cli):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = cli("--store", tmp_path / "store.sqlite", "run", "--models", "openai:gpt-x", "--base-url", server.openai_url,
            "--problems", K.PROBLEM, "--backend", "sim")
    assert r.returncode == 2
    assert "needs an API key in $OPENAI_API_KEY, which is not set" in r.stderr
    assert "Traceback" not in r.stderr
    assert server.requests == []
    assert not (tmp_path / "store.sqlite").exists()  # nothing stored either


def test_run_needs_solutions_or_models_and_not_both(tmp_path, cli):
    r = cli("--store", tmp_path / "s.sqlite", "run", "--problems", K.PROBLEM)
    assert r.returncode == 2 and "run needs --solutions DIR" in r.stderr and "--models" in r.stderr
    r = cli("--store", tmp_path / "s.sqlite", "run", "--solutions", tmp_path, "--models", "openai:x")
    assert r.returncode == 2 and "not both" in r.stderr
    r = cli("--store", tmp_path / "s.sqlite", "run", "--models", "openai:x", "--executor", "ray")
    assert r.returncode == 2 and "--executor ray" in r.stderr
    r = cli("--store", tmp_path / "s.sqlite", "run", "--models", "nosuch:x", "--problems", K.PROBLEM)
    assert r.returncode == 2 and "unknown provider 'nosuch'" in r.stderr and "Traceback" not in r.stderr
    r = cli("--store", tmp_path / "s.sqlite", "run", "--config", tmp_path / "missing.toml")
    assert r.returncode == 2 and "no such config file" in r.stderr
