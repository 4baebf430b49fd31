"""Providers by kind. Each SDK is imported only when a model of its kind is built, so
`import kbmetal` and runs that use other providers never load it.

    provider = make_provider(spec)                    # reads the key now: a missing one fails here
    completion = provider.complete(Request(...))
"""

from __future__ import annotations

from ..config import ModelSpec
from ..errors import ConfigError
from .base import Completion, Failure, MalformedResponse, Provider, Request, RetryPolicy


def make_provider(spec: ModelSpec, retry: RetryPolicy | None = None, **kwargs) -> Provider:
    from ..keys import read_key

    key = read_key(spec.key_env, f"model {spec.label}") if spec.key_env else None
    if spec.kind == "openai":
        from .openai_compat import OpenAIProvider

        return OpenAIProvider(spec, key, retry=retry, **kwargs)
    if spec.kind == "anthropic":
        from .anthropic_api import AnthropicProvider

        return AnthropicProvider(spec, key, retry=retry, **kwargs)
    if spec.kind == "google":
        from .google_genai import GoogleProvider

        return GoogleProvider(spec, key, retry=retry, **kwargs)
    if spec.kind == "replay":
        from .replay import ReplayProvider

        return ReplayProvider(spec, key, retry=retry, **kwargs)
    raise ConfigError(f"model {spec.label}: unknown provider kind {spec.kind!r}")


def expand_specs(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Specs as a run asks them: a replay of a stored run becomes one spec per stored model."""
    from .replay import expand

    out: list[ModelSpec] = []
    for spec in specs:
        out.extend(expand(spec) if spec.kind == "replay" else [spec])
    labels = [s.label for s in out]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(f"model label(s) {', '.join(twice)} occur twice after expanding replays; name the replays")
    return out


__all__ = ["Completion", "Failure", "MalformedResponse", "Provider", "Request", "RetryPolicy", "expand_specs",
           "make_provider"]
