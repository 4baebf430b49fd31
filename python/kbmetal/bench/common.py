"""What the commands share: options from arguments, and user errors turned into one line."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
from typing import Any

from .cli_errors import UsageError


@contextlib.contextmanager
def user_errors():
    """Problem, backend, store and solutions errors are the user's to fix: one line, exit 2."""
    from ..evaluator.backends import BackendError
    from ..problems import ProblemError
    from ..solutions import SolutionsError
    from ..store import StoreError

    try:
        yield
    except (ProblemError, BackendError, StoreError, SolutionsError) as exc:
        raise UsageError(str(exc)) from None


def eval_options(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """EvalOptions fields chosen on the command line."""
    options: dict[str, Any] = {}
    if getattr(args, "trials", None) is not None:
        if args.trials < 1:
            raise UsageError("--trials must be at least 1")
        options["trials"] = args.trials
    if getattr(args, "partial", False):
        options["strict"] = False
    if getattr(args, "no_timing", False):
        options["timing"] = False
    if getattr(args, "no_compile_baseline", False):
        options["compile_baseline"] = False
    if getattr(args, "memory_limit", None) is not None:
        if args.memory_limit < 64:
            raise UsageError("--memory-limit is in MiB and must be at least 64")
        options["memory_limit_mb"] = args.memory_limit
    if getattr(args, "seed", None) is not None:
        options["seed"] = args.seed
    options.update(extra)
    return options


def size_overrides(args: argparse.Namespace) -> dict | None:
    from ..problems.sizing import parse_size_overrides

    try:
        return parse_size_overrides(getattr(args, "size", []) or []) or None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def resolve_backend(name: str | None):
    from ..evaluator import backends

    with user_errors():
        return backends.resolve(name)


def read_solution(path_text: str) -> str:
    path = pathlib.Path(path_text)
    if not path.exists():
        raise UsageError(f"{path}: no such solution file")
    if not path.is_file():
        raise UsageError(f"{path}: not a file (give the Python file that defines ModelNew)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            f"{path}: not a UTF-8 text file (give the Python file that defines ModelNew)"
        ) from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def store_path(args: argparse.Namespace) -> pathlib.Path:
    from . import DEFAULT_STORE

    return pathlib.Path(args.store or DEFAULT_STORE)
