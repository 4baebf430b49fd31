"""The swarm and the supervisor: several models at once, bounded per provider; the second round;
the response cache; the supervisor choosing the faster of two correct kernels.

On the sim timings are not performance, so the supervisor's test judges both kernels for real on
the sim (both must pass every check) and then gives them timing records as a GPU would, from a
table keyed by kernel: the choice must follow those times, whichever model or order they come in.
The loop's own tests use a fake judge where the verdicts' content, not the sim, is the point.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import gen_kernels as K
import pytest
from gen_helpers import fake_judge, timed_sim_judge
from gen_helpers import specs as _specs
from scripted_server import code, slow, text

pytestmark = pytest.mark.timeout(300)


def test_supervisor_chooses_the_faster_of_two_correct_kernels(tmp_path, server, keys):
    from kbmetal.generate import generate, records, summary
    from kbmetal.generate.config import Config, resolve_models
    from kbmetal.store import Store

    models = resolve_models(["openai:slow-writer", "anthropic:fast-writer"], Config(), {})
    models = [dataclasses.replace(m, base_url=server.openai_url if m.kind == "openai" else server.anthropic_url)
              for m in models]
    server.script("slow-writer", code(K.module("scalar")))
    server.script("fast-writer", code(K.module("vector4")))
    store_path = tmp_path / "store.sqlite"
    outcome = generate([K.PROBLEM], models, store=store_path, backend="sim", turns=1,
                       judges=timed_sim_judge({"scalar": 2.0, "vector4": 1.0}))
    assert outcome.complete
    chosen = outcome.selections[K.PROBLEM].chosen
    assert (chosen.model, chosen.attempt) == ("anthropic:fast-writer", 1)

    with Store(store_path) as store:
        stored = records.selections(store, outcome.run_id)[K.PROBLEM]
        assert stored["model"] == "anthropic:fast-writer"
        ranking = stored["reasons"]["ranking"]
        assert [r["model"] for r in ranking] == ["anthropic:fast-writer", "openai:slow-writer"]
        assert ranking[1]["why"] == "slower: 2 ms against 1 ms"
        assert "fastest correct candidate" in stored["reasons"]["summary"]
        rows = {r.name: r for r in summary.summarize(store, outcome.run_id, [K.PROBLEM],
                                                     ["openai:slow-writer", "anthropic:fast-writer"])}
    assert rows[summary.SWARM].geomean == pytest.approx(1.5)  # 1.5 ms eager / 1.0 ms
    assert rows["openai:slow-writer"].fast[1.0] == 0.0  # 0.75x eager: correct but not faster
    assert rows["anthropic:fast-writer"].fast[1.0] == 1.0


def test_supervisor_follows_the_times_not_the_order(tmp_path, server, keys):
    """The same two kernels with the times swapped: the other model's kernel wins."""
    from kbmetal.generate import generate

    server.script("first", code(K.module("vector4")))
    server.script("second", code(K.module("scalar")))
    outcome = generate([K.PROBLEM], _specs(server, "first", "second"), store=tmp_path / "s.sqlite", backend="sim",
                       turns=1, judges=timed_sim_judge({"scalar": 1.0, "vector4": 3.0}))
    assert outcome.selections[K.PROBLEM].chosen.model == "openai:second"


def test_requests_stay_within_the_provider_limit(tmp_path, server, keys):
    from kbmetal.generate import generate

    names = ["m1", "m2", "m3", "m4"]
    for name in names:
        server.script(name, slow(code(K.module("scalar")), 0.6))
    outcome = generate([K.PROBLEM], _specs(server, *names, concurrency=2), store=tmp_path / "s.sqlite",
                       backend="sim", turns=1, judges=fake_judge(lambda source: True))
    assert outcome.complete
    assert len(server.requests) == 4
    assert server.max_in_flight == 2  # four models, one endpoint limited to two at a time


def test_identical_requests_hit_the_response_cache(tmp_path, server, keys):
    from kbmetal.generate import generate, records
    from kbmetal.store import Store

    server.script("cached-model", code(K.module("scalar")))
    settings = dict(store=tmp_path / "s.sqlite", backend="sim", turns=1, cache_dir=tmp_path / "cache",
                    judges=fake_judge(lambda source: True))
    specs = _specs(server, "cached-model", input_price=1.0, output_price=1.0)
    first = generate([K.PROBLEM], specs, **settings)
    second = generate([K.PROBLEM], specs, fresh=True, **settings)
    assert first.run_id != second.run_id
    assert len(server.requests) == 1  # the second run was answered from the cache
    with Store(tmp_path / "s.sqlite") as store:
        [row] = records.request_rows(store, second.run_id)
        assert row["cached"] == 1 and row["cost_usd"] == 0.0 and row["status"] == "ok"
        [original] = records.request_rows(store, first.run_id)
        assert original["cached"] == 0 and original["cost_usd"] > 0
        assert row["request_key"] == original["request_key"] and row["response"] == original["response"]


def test_second_round_shows_every_model_the_best_kernels_so_far(tmp_path, server, keys):
    from kbmetal.generate import generate

    server.script("a", code(K.wrong_values(), prose="first try"), code(K.module("vector4")))
    server.script("b", text("no code from me"), code(K.module("scalar")))
    outcome = generate([K.PROBLEM], _specs(server, "a", "b"), store=tmp_path / "s.sqlite", backend="sim",
                       turns=1, rounds=2, judges=fake_judge(lambda source: "0.5f" not in source))
    assert outcome.complete
    round_two = [r for r in server.requests if "The best kernels so far" in r.last_user]
    assert len(round_two) == 2  # one per model
    shown = round_two[0].last_user
    assert "by openai:a (attempt 1)" in shown and "max(x[i], 0.5f)" in shown
    assert "FAIL at correctness" in shown
    assert "by openai:b" not in shown  # its answer had no code: nothing to show
    chosen = outcome.selections[K.PROBLEM].chosen
    assert chosen.attempt == 2  # round two continues the attempt numbers
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT COUNT(*) FROM gen_requests WHERE round = 2").fetchone()[0] == 2
    db.close()


def test_round_two_is_skipped_where_a_correct_kernel_exists_and_speed_cannot_be_measured(tmp_path, server, keys):
    from kbmetal.generate import generate

    server.script("a", code(K.module("scalar")))
    server.script("b", code(K.wrong_values()))
    outcome = generate([K.PROBLEM], _specs(server, "a", "b"), store=tmp_path / "s.sqlite", backend="sim",
                       turns=1, rounds=2, judges=fake_judge(lambda source: "0.5f" not in source))
    assert outcome.complete and len(server.requests) == 2


def test_a_resumed_run_opens_round_two_from_stored_work(tmp_path, server, keys):
    """Round one finished and stored, round two refused (the key): the rerun goes straight to round
    two without asking round one again."""
    from kbmetal.generate import generate
    from scripted_server import unauthorized

    server.script("a", code(K.wrong_values()), unauthorized())
    settings = {"store": tmp_path / "s.sqlite", "backend": "sim", "turns": 1, "rounds": 2,
                "judges": fake_judge(lambda source: "0.5f" not in source)}
    first = generate([K.PROBLEM], _specs(server, "a"), **settings)
    assert not first.complete and "was refused" in first.paused["openai:a"]
    server.script("a", code(K.module("scalar")))
    second = generate([K.PROBLEM], _specs(server, "a"), **settings)
    assert second.run_id == first.run_id and second.complete
    assert len(server.requests) == 3  # round one once, round two refused, round two answered
    assert "The best kernels so far" in server.requests[-1].last_user
    assert second.selections[K.PROBLEM].chosen.attempt == 2


def test_a_rejected_request_ends_its_chain_and_the_model_goes_on(tmp_path, server, keys):
    from kbmetal.generate import generate
    from scripted_server import Reply

    def respond(request):
        if "problem L1-012" in request.last_user:
            return Reply(400, {"error": {"message": "prompt is too long"}})
        return code(K.module("scalar"))

    server.fallback = respond
    outcome = generate(["L1-012", "L1-013"], _specs(server, "a"), store=tmp_path / "s.sqlite", backend="sim",
                       turns=2, judges=fake_judge(lambda source: True))
    assert outcome.complete and not outcome.paused  # a rejection is final, not a paused model
    assert outcome.selections["L1-012"].chosen is None
    assert outcome.selections["L1-013"].chosen is not None
    assert len(server.requests) == 2  # the rejected request was not retried
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("SELECT status FROM gen_requests WHERE problem_id = 'L1-012'").fetchone()[0] == "rejected"
    db.close()
