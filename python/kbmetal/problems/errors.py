"""The one error type for a problem file that cannot be used."""

from __future__ import annotations

import pathlib


class ProblemError(Exception):
    """A problem file is broken or was asked for something it cannot give.

    The message always starts with the file (or folder) it concerns, then says what is wrong and,
    where there is one, the fix.
    """

    def __init__(self, path: str | pathlib.Path | None, cause: str):
        self.path = pathlib.Path(path) if path is not None else None
        self.cause = cause
        super().__init__(f"{path}: {cause}" if path is not None else cause)


def _line_in_file(exc: BaseException, filename: str) -> int | None:
    """The deepest line of `filename` in the exception's traceback: where the file went wrong."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_exception(exc: BaseException, filename: str | None = None) -> str:
    """`ValueError: bad size (line 12)`: the exception's first line, plus where in the file."""
    message = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    line = _line_in_file(exc, filename) if filename else None
    return f"{text} (line {line})" if line is not None else text


def raised(path: pathlib.Path, what: str, exc: BaseException) -> ProblemError:
    """A ProblemError for an exception raised by the file's own code while running `what`."""
    cause = f"{what} raised {describe_exception(exc, str(path))}"
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        cause += f"; the problem needs the package {exc.name!r}: pip install {exc.name.split('.')[0]}"
    error = ProblemError(path, cause)
    error.__cause__ = exc
    return error
