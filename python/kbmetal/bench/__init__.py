"""`python -m kbmetal.bench`: the command line.

    python -m kbmetal.bench                         the main job: bundled solutions, best backend
    python -m kbmetal.bench eval PROBLEM SOLUTION   judge one solution (--json for a record)
    python -m kbmetal.bench run --solutions DIR     judge a folder of solutions; resumable
    python -m kbmetal.bench run --models A,B ...    models write the kernels (kbmetal.generate)
    python -m kbmetal.bench report [RUN]            tables and report files of a stored run
    python -m kbmetal.bench lint PATH...            flag problems that reward cheating

Exit codes: 0 success (eval: the candidate passed; run: every candidate passed), 1 a candidate
failed (or lint flagged a problem), 2 a usage error, a bad path or file, or a broken problem,
130 interrupted. Errors a user can cause print one line that names the thing and the fix, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys

from .cli_errors import UsageError

DEFAULT_STORE = "runs/kbmetal.sqlite"


def _add_judging_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("sim", "metal", "cuda"), help="default: the best backend present")
    p.add_argument(
        "--sizes",
        help="size preset: small, default, heldout, auto-small (default: small on the sim, default on a GPU)",
    )
    p.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a size constant (repeatable)",
    )
    p.add_argument("--dtype", help="run the problem in this dtype (one of its DTYPES)")
    p.add_argument("--trials", type=int, help="correctness trials at the main sizes (default 4)")
    p.add_argument(
        "--partial",
        action="store_true",
        help="allow PyTorch ops in the candidate and report the share of time in custom kernels (default: strict)",
    )
    p.add_argument("--no-timing", action="store_true", help="skip timing")
    p.add_argument("--no-compile-baseline", action="store_true", help="skip the torch.compile baseline")
    p.add_argument(
        "--memory-limit",
        type=int,
        metavar="MB",
        help="memory limit of the candidate's process (default 8192)",
    )
    p.add_argument("--seed", type=int, help="fix the trial seeds (repeatable runs; default: unpredictable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kbmetal.bench",
        description="Judge GPU kernels for KernelBench-format problems. With no command: the main job "
        "(the bundled solutions on the best backend present; store and report under ./runs/).",
    )
    parser.add_argument("--store", default=None, help=f"the run store (default: {DEFAULT_STORE})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("eval", help="judge one solution file against one problem")
    p.add_argument("problem", help="a problem file, or an id (L1-019) or name of a bundled problem")
    p.add_argument("solution", help="a Python file defining ModelNew")
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    _add_judging_options(p)

    p = sub.add_parser(
        "run", help="judge a folder of solutions, or have models write them (--models); resumable"
    )
    p.add_argument("--solutions", help="folder of solutions named L1-019.py or 019_relu.py")
    p.add_argument("--problems-dir", help="where the problems are (default: the bundled problems/)")
    p.add_argument("--level", type=int, action="append", help="only these levels (repeatable)")
    p.add_argument("--problems", help="only these problems: L1-001..L1-020,L2-003")
    p.add_argument(
        "--run-id", help="name of the run (default: a timestamp); an unfinished run of that name resumes"
    )
    p.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one matches")
    p.add_argument("--concurrency", type=int, help="candidates judged at once (default: one per core)")
    p.add_argument("--executor", choices=("local", "serial", "ray"), default="local")
    p.add_argument("--out", help="report folder (default: runs/<run id>/)")
    _add_judging_options(p)
    from ..generate.cli import add_generation_options

    add_generation_options(p)

    p = sub.add_parser("report", help="show a stored run and write its report files")
    p.add_argument("run", nargs="?", help="run id (default: the latest)")
    p.add_argument(
        "--out",
        help="write report.md, report.html, verdicts.json, verdicts.csv here (default: runs/<run id>/)",
    )
    p.add_argument(
        "--format", choices=("table", "markdown", "json", "csv"), default="table", help="what to print"
    )

    p = sub.add_parser("lint", help="flag problems whose reference rewards cheating")
    p.add_argument("paths", nargs="+", help="problem files or folders (or levels: 1, L1)")
    p.add_argument("--sizes", default="small")
    p.add_argument("--size", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from .run_cmd import main_job

            return main_job(args)
        if args.command == "eval":
            from .eval_cmd import eval_command

            return eval_command(args)
        if args.command == "run":
            from ..generate.cli import generate_command, wants_generation

            if wants_generation(args):
                if args.solutions:
                    raise UsageError(
                        "give either --solutions DIR (judge a folder) or --models (have models write kernels), not both"
                    )
                return generate_command(args)
            if not args.solutions:
                raise UsageError(
                    "run needs --solutions DIR (judge a folder of solutions) or --models A,B "
                    "(have models write them; see docs/generation.md)"
                )
            from .run_cmd import run_command

            return run_command(args)
        if args.command == "report":
            from .report_cmd import report_command

            return report_command(args)
        if args.command == "lint":
            from ..problems.lint import lint_main
            from ..problems.sizing import parse_size_overrides

            try:
                overrides = parse_size_overrides(args.size)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            return lint_main(args.paths, args.sizes, args.json, overrides=overrides or None)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


__all__ = ["build_parser", "main"]
