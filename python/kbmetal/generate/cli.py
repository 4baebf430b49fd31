"""`python -m kbmetal.bench run --models A,B,...`: models write the kernels, the evaluator judges
them, the supervisor picks the best per problem.

    python -m kbmetal.bench run --models openai:gpt-4.1,anthropic:claude-sonnet-4-5 \\
        --level 1 --problems L1-001..L1-020 --turns 5

Progress bars per model and for the problems; a killed or interrupted run resumes when the same
command runs again (or `--run-id ID`), without asking a finished request or judging a candidate
twice. Exit codes: 0 the run finished with a correct kernel for every problem, 1 it finished
without one for some problem, 2 a usage or config error (a missing key among them), 3 a provider
failed (unreachable, refused the key or the model): the work so far is stored and the run resumes
later, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys

EXIT_INCOMPLETE = 3


def add_generation_options(p: argparse.ArgumentParser) -> None:
    """The options of `run` that ask models to write the kernels."""
    g = p.add_argument_group("generation (with --models or --config)")
    g.add_argument("--models", help="models, comma-separated: provider:model (openai:gpt-4.1, anthropic:..., "
                   "ollama:qwen2.5-coder:32b, replay:DIR-or-STORE) or names of [[models]] in --config")
    g.add_argument("--config", help="TOML file with [defaults], [providers.NAME] and [[models]] (docs/generation.md)")
    g.add_argument("--turns", type=int, default=3, help="attempts per model and problem, each fed the last verdict (default 3)")
    g.add_argument("--rounds", type=int, choices=(1, 2), default=1,
                   help="2: a second round that shows every model the best kernels so far")
    g.add_argument("--history", type=int, default=2, help="earlier attempts kept in each conversation (default 2)")
    g.add_argument("--fewshot", type=int, default=2, help="bundled solutions shown as examples (default 2)")
    g.add_argument("--prompt", choices=("metal", "cuda", "load_inline"),
                   help="prompt style (default: metal for sim and metal, cuda for cuda)")
    g.add_argument("--stop-when-correct", action="store_true",
                   help="end each chain at its first correct kernel (the sim always does: it cannot time)")
    g.add_argument("--temperature", type=float, help="for every model (overrides the config)")
    g.add_argument("--max-tokens", type=int, help="for every model (overrides the config)")
    g.add_argument("--reasoning-effort", choices=("minimal", "low", "medium", "high"), help="where the model offers it")
    g.add_argument("--base-url", help="for every model: an OpenAI-compatible server, e.g. http://localhost:8000/v1")
    g.add_argument("--key-env", help="environment variable holding the API key, for every model ('' for none)")
    g.add_argument("--input-price", type=float, help="USD per million input tokens, for every model")
    g.add_argument("--output-price", type=float, help="USD per million output tokens, for every model")
    g.add_argument("--request-timeout", type=float, help="seconds per HTTP request (default 600)")
    g.add_argument("--provider-concurrency", type=int, help="requests in flight per provider endpoint (default 4)")
    g.add_argument("--max-retries", type=int, help="retries on rate limits, server errors and timeouts (default 6)")
    g.add_argument("--no-cache", action="store_true", help="ask the models again instead of reusing cached answers")
    g.add_argument("--cache-dir", help="response cache folder (default: response-cache/ beside the store)")


def wants_generation(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "models", None) or getattr(args, "config", None))


def _overrides(args: argparse.Namespace) -> dict:
    return {
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "reasoning_effort": args.reasoning_effort,
        "base_url": args.base_url,
        "key_env": args.key_env,
        "input_price": args.input_price,
        "output_price": args.output_price,
        "timeout": args.request_timeout,
        "concurrency": args.provider_concurrency,
        "max_retries": args.max_retries,
    }


def _log_to(folder: pathlib.Path, console) -> list[logging.Handler]:
    from .progress import ConsoleHandler, RedactingFilter

    folder.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(folder / "generate.log", encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.addFilter(RedactingFilter())
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handlers = [file_handler, ConsoleHandler(console)]
    logger = logging.getLogger("kbmetal.generate")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in handlers:
        logger.addHandler(handler)
    return handlers


def generate_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .. import report
    from .. import solutions as sol
    from ..bench.cli_errors import UsageError
    from ..bench.common import eval_options, size_overrides, store_path, user_errors
    from ..problems import load_problems
    from . import api, records, summary
    from .config import load_config, resolve_models
    from .errors import GenerationError
    from .progress import RichProgress

    if args.executor == "ray":
        raise UsageError("--executor ray is for `run --solutions`; generation judges with local or serial")
    if args.turns < 1 or args.history < 0 or args.fewshot < 0:
        raise UsageError("--turns must be at least 1, --history and --fewshot at least 0")
    console = Console(stderr=True)
    store_file = store_path(args)
    try:
        config = load_config(args.config)
        specs = args.models.split(",") if args.models else None
        with user_errors():
            problems = load_problems(args.problems_dir or None)
            chosen = sol.select(problems, args.level, args.problems)
        if not chosen:
            raise UsageError("no problem matches --level/--problems")
        with user_errors():
            models = resolve_models(specs, config, _overrides(args))
            prepared = api.prepare(
                chosen, models, store=store_file, backend=args.backend, turns=args.turns, rounds=args.rounds,
                history=args.history, stop_when_correct=args.stop_when_correct, prompt_style=args.prompt,
                fewshot=args.fewshot, sizes=args.sizes, overrides=size_overrides(args), dtype=args.dtype,
                eval_options=eval_options(args), run_id=args.run_id, fresh=args.fresh,
                command=" ".join(["python -m kbmetal.bench", *sys.argv[1:]]),
            )
    except GenerationError as exc:
        raise UsageError(str(exc)) from None
    store, run_id, plan = prepared.store, prepared.run_id, prepared.plan
    folder = pathlib.Path(args.out) if args.out else store_file.parent / run_id
    handlers = _log_to(folder, console)
    labels = [m.label for m in plan.models]
    try:
        if prepared.resumed:
            console.print(f"resuming run {run_id}: {prepared.done_before} candidate(s) judged before")
        else:
            console.print(f"run {run_id}: {len(labels)} model(s) x {len(plan.problems)} problem(s), up to "
                          f"{plan.loop.turns} turn(s) each, judged on {plan.judge.backend} ({plan.judge.device})")
        cache_dir = None if args.no_cache else pathlib.Path(args.cache_dir or store_file.parent / "response-cache")
        try:
            with RichProgress(console, labels, len(plan.problems)) as progress:
                outcome = api.execute(prepared, judges=args.executor, concurrency=args.concurrency,
                                      cache_dir=cache_dir, progress=progress)
        except KeyboardInterrupt:
            console.print(f"interrupted: rerun the same command to resume run {run_id}")
            raise
        rows = summary.summarize(store, run_id, [p.id for p in plan.problems], labels)
        summary.print_summary(Console(), store, run_id, rows, plan.judge.is_performance)
        written = report.write_reports(store, run_id, folder)
        (folder / "generation.json").write_text(json.dumps({
            "run": run_id,
            "complete": outcome.complete,
            "paused": outcome.paused,
            "summary": summary.to_json(rows),
            "selections": records.selections(store, run_id),
        }, indent=1, default=str), encoding="utf-8")
        console.print(f"store: {store_file}; report: {written['html']}; log: {folder / 'generate.log'}")
        if not outcome.complete:
            from rich.markup import escape

            for model, why in outcome.paused.items():
                console.print(f"[red]{escape(model)} stopped:[/] {escape(why)}", highlight=False)
            console.print(f"run {run_id} is unfinished: rerun the same command to resume it")
            return EXIT_INCOMPLETE
        return 0 if all(s.chosen is not None for s in outcome.selections.values()) else 1
    finally:
        logger = logging.getLogger("kbmetal.generate")
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        store.close()
