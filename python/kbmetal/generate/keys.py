"""API keys: read from the environment only, and kept out of everything generation writes.

A key is read once, by name (`OPENAI_API_KEY`, or the `key_env` a model's config gives), when
its provider is built, which is before the run's first request: a missing key is an error then,
not in the middle of a run.

Where a key may otherwise leak, and what stops it:
- the store, the run's log, the response cache and reports: every text generation writes goes
  through `redact`, which blanks the values of every key read here as well as every secret the
  evaluator's sandbox recognises in the environment;
- candidate processes: the evaluator drops environment variables whose name or value looks like a
  credential (OPENAI_API_KEY, sk-...). A key kept under a name it would not recognise
  (`key_env = "LLM_PASS_FOR_LAB"` holding a bare token) is therefore removed from this process's
  environment once read, so no judge or worker started later inherits it;
- prompts and request records hold messages and parameters only; the key travels in the HTTP
  client's headers and nowhere else.
"""

from __future__ import annotations

import os
import threading

from .errors import ConfigError

_lock = threading.Lock()
_withheld: dict[str, str] = {}  # keys taken out of os.environ, by variable name
_values: set[str] = set()  # every key value read, for redaction

_MIN_LENGTH = 6  # shorter values would blank ordinary words; no real key is that short


def read_key(variable: str, who: str) -> str:
    """The value of the environment variable `variable`, for the model or provider `who`."""
    from ..evaluator.sandbox import is_secret

    with _lock:
        value = os.environ.get(variable)
        if value is None:
            value = _withheld.get(variable)
        if not value or not value.strip():
            raise ConfigError(
                f"{who} needs an API key in ${variable}, which is not set: export {variable}=... "
                f"(keys are read from the environment only), or name another variable with key_env "
                f"in the config (key_env = \"\" for a local server that needs none)"
            )
        value = value.strip()
        if len(value) >= _MIN_LENGTH:
            _values.add(value)
        if not is_secret(variable, value) and variable in os.environ:
            # the evaluator would not recognise it: take it out of the environment children get
            _withheld[variable] = os.environ.pop(variable)
        return value


def known_values() -> list[str]:
    """Every key value read in this process, longest first (so no key is blanked half-way)."""
    with _lock:
        return sorted(_values, key=len, reverse=True)


def redact(text: str | None) -> str | None:
    """`text` with every key read here and every secret of the environment blanked."""
    if not text:
        return text
    from ..evaluator.sandbox import redact as redact_environment

    for value in known_values():
        if value in text:
            text = text.replace(value, "[redacted]")
    return redact_environment(text)
