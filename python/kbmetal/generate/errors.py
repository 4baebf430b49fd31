"""The errors of generation. Each message names the thing (model, provider, base URL, file) and
the fix; the command line prints it as one line."""

from __future__ import annotations


class GenerationError(Exception):
    """Base class: something generation cannot do as asked."""


class ConfigError(GenerationError):
    """A model spec, a config file or an option that cannot be used (raised before any request)."""


class ProviderError(GenerationError):
    """A request failed for good: not retryable, or still failing after every retry.

    `fatal`: no later request to this model can succeed either (a refused key, an unknown model, a
    used-up quota): the model stops for this run. `rejected`: the server refused this one request
    (too long, malformed): asking it again cannot help, but the model can go on. Neither: the
    provider kept failing (rate limits, server errors, no connection): the run stays resumable.
    """

    def __init__(self, message: str, *, fatal: bool = False, rejected: bool = False, status: int | None = None,
                 tries: int = 1):
        super().__init__(message)
        self.fatal = fatal
        self.rejected = rejected
        self.status = status
        self.tries = tries


class ProviderUnreachable(ProviderError):
    """No connection to the provider's base URL (refused, DNS, TLS, or every try timed out)."""


class NoMoreResponses(GenerationError):
    """The replay provider holds no response for this request: the chain ends there."""
