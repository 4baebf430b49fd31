"""The one error type the command line prints as a single line (exit code 2)."""


class UsageError(Exception):
    """A user error: a bad path, file, option or problem. The message names it and the fix."""
