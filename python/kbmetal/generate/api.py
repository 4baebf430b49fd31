"""`kbmetal.generate.generate()`: a generation run from Python, the one path the command line
takes too.

    from kbmetal.generate import generate
    outcome = generate(["L1-012", "L1-024"], ["openai:gpt-4.1", "anthropic:claude-sonnet-4-5"],
                       store="runs/kbmetal.sqlite", backend="sim", turns=3)
    outcome.selections["L1-012"].chosen

A run is planned from its settings; its fingerprint (models and their parameters, problems, backend,
sizes, judging options, loop and prompt settings) finds an unfinished run with the same one in
the store and resumes it, unless `fresh`.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .config import Config, ModelSpec, identities, resolve_models
from .errors import ConfigError
from .judging import JudgeFunction, JudgeSettings, make_judges
from .prompts import PromptSettings, default_style
from .providers import RetryPolicy, expand_specs, make_provider
from .refine import LoopSettings
from .swarm import GenerationRun, Outcome, ProgressView, RunPlan


@dataclass
class Prepared:
    """A run ready to go: stored, with its providers built (so every key has been read)."""

    store: Any
    run_id: str
    resumed: bool
    done_before: int  # candidates already judged when it resumed
    plan: RunPlan
    providers: dict
    owns_store: bool = False  # the store was opened here from a path: close it when done


def _fingerprint(models: list[ModelSpec], problems: list, judge: JudgeSettings, loop: LoopSettings,
                 prompt: PromptSettings) -> str:
    payload = {
        "models": identities(models),
        "problems": [(p.id, hashlib.sha256(p.source.encode()).hexdigest()) for p in problems],
        "judge": [judge.backend, judge.sizes, judge.overrides, judge.dtype, judge.options],
        "loop": asdict(loop),
        "prompt": asdict(prompt),
    }
    return "gen-" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:28]


def _problems(problems: Sequence) -> list:
    from ..problems import Problem, find_problem

    return [p if isinstance(p, Problem) else find_problem(p) for p in problems]


def prepare(
    problems: Sequence,
    models: Sequence[str | ModelSpec],
    *,
    store: Any,
    backend: str | None = None,
    turns: int = 3,
    rounds: int = 1,
    history: int = 2,
    show_best: int = 3,
    stop_when_correct: bool = False,
    prompt_style: str | None = None,
    fewshot: int = 2,
    sizes: str | dict | None = None,
    overrides: dict | None = None,
    dtype: str | None = None,
    eval_options: dict[str, Any] | None = None,
    config: Config | None = None,
    model_overrides: dict[str, Any] | None = None,
    run_id: str | None = None,
    fresh: bool = False,
    retry: RetryPolicy | None = None,
    command: str | None = None,
) -> Prepared:
    """Resolve models, build providers (reading keys: a missing key fails here, before anything is
    stored or asked), and create or resume the run in `store` (a Store or a path)."""
    from ..evaluator import backends as backends_mod
    from ..store import Store
    from . import records  # noqa: F401 - registers generation's tables before the store opens

    specs = [m for m in models if isinstance(m, ModelSpec)]
    named = [m for m in models if not isinstance(m, ModelSpec)]
    if named:
        specs += resolve_models(named, config or Config(), model_overrides)
    specs = expand_specs(specs)
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must be unique: {', '.join(labels)}")
    problems = _problems(problems)
    if not problems:
        raise ConfigError("no problems to generate kernels for")
    resolved = backends_mod.resolve(backend)
    try:
        prompt = PromptSettings(prompt_style or default_style(resolved.name), resolved.name, fewshot, dtype)
        loop = LoopSettings(turns, rounds, history, show_best, stop_when_correct)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    from ..evaluator.options import EvalOptions

    options = dict(eval_options or {})  # only what was asked, so that new defaults apply on resume too
    try:
        EvalOptions.from_kwargs(**options)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    judge = JudgeSettings(resolved.name, resolved.device_name, resolved.is_performance,
                          sizes if sizes is not None else resolved.default_sizes, overrides, dtype, options)
    providers = {spec.label: make_provider(spec, retry=retry) for spec in specs}
    fingerprint = _fingerprint(specs, problems, judge, loop, prompt)
    record = {  # the run's row, should it be new
        "kind": "generation", "fingerprint": fingerprint, "backend": resolved.name, "device": resolved.device_name,
        "sizes": judge.sizes if isinstance(judge.sizes, str) else json.dumps(judge.sizes), "dtype": dtype,
        "command": command,
        "options": {**options, "overrides": overrides,
                    "generation": {"models": [m.identity() for m in specs], "loop": asdict(loop), "prompt": asdict(prompt)}},
    }
    owned = not isinstance(store, Store)
    db = Store(store) if owned else store
    try:
        run_id, resumed = _create_or_resume(db, run_id, fresh, record)
        done_before = sum(1 for _ in db.verdicts(run_id)) if resumed else 0
    except BaseException:
        if owned:
            db.close()
        raise
    plan = RunPlan(run_id, problems, specs, prompt, loop, judge,
                   peak_bandwidth_gbs=resolved.peak_bandwidth_gbs if resolved.is_performance else None)
    return Prepared(db, run_id, resumed, done_before, plan, providers, owned)


def _create_or_resume(db, run_id: str | None, fresh: bool, record: dict[str, Any]) -> tuple[str, bool]:
    """The run to execute, and whether it existed: `run_id` if stored (with the same fingerprint),
    else the unfinished run with this fingerprint (unless `fresh`), else a new one."""
    fingerprint = record["fingerprint"]
    existing = {r["id"]: r for r in db.runs()}
    if run_id and run_id in existing:
        if existing[run_id]["fingerprint"] != fingerprint:
            raise ConfigError(f"run {run_id!r} exists in {db.path} with other models, problems or settings; "
                              "pick another run id, or repeat that run's settings to resume it")
        return run_id, True
    found = None if fresh or run_id else db.find_resumable(fingerprint)
    if found is not None:
        return found, True
    return db.create_run([], run_id=run_id, **record), False


def execute(prepared: Prepared, *, judges: str | JudgeFunction = "local", concurrency: int | None = None,
            cache_dir: str | pathlib.Path | None = None, progress: ProgressView | None = None) -> Outcome:
    """Run (or resume) a prepared run to its end, or until its providers fail it."""
    from ..evaluator import sandbox
    from .cache import ResponseCache

    sandbox.protect_this_process()
    cache = ResponseCache(cache_dir) if cache_dir else None
    pool = make_judges(judges, concurrency)
    cancelled = True
    try:
        outcome = GenerationRun(prepared.store, prepared.plan, prepared.providers, pool, cache, progress).execute()
        cancelled = False
        return outcome
    finally:
        pool.close(cancel=cancelled)


def generate(problems: Sequence, models: Sequence[str | ModelSpec], *, store: Any, judges: str | JudgeFunction = "local",
             concurrency: int | None = None, cache_dir: str | pathlib.Path | None = None,
             progress: ProgressView | None = None, **settings: Any) -> Outcome:
    """Plan or resume a run, then execute it. `settings` are prepare()'s keyword arguments."""
    prepared = prepare(problems, models, store=store, **settings)
    try:
        return execute(prepared, judges=judges, concurrency=concurrency, cache_dir=cache_dir, progress=progress)
    finally:
        if prepared.owns_store:
            prepared.store.close()
