"""Generation: LLMs write kernels, the evaluator judges them, each model sees why its kernel failed
or where it is slow and tries again, and a supervisor keeps the best per problem.

    from kbmetal.generate import generate
    outcome = generate(["L1-012"], ["openai:gpt-4.1"], store="runs/kbmetal.sqlite", backend="sim")

The parts, one job each:

    config       models from `provider:model` specs and TOML files
    keys         API keys from the environment, kept out of everything written
    providers/   openai (and compatible servers), anthropic, google, replay; retries and backoff
    cache        the response cache
    prompts/     per-backend templates, the kernel contract, device facts, few-shot examples
    extract      the solution in a response
    feedback     a verdict as the next turn's message
    refine       one model's chain of attempts at one problem
    swarm        all chains at once; the second round; the run loop
    supervisor   the best candidate per problem, with reasons
    judging      candidates to the evaluator, as they arrive
    records      generation's tables in the run store
    accounting   tokens and cost
    summary      the end-of-run tables
    api, cli     generate() and `python -m kbmetal.bench run --models`

Importing this package loads no SDK: a provider's SDK is imported when a model of its kind is built.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "generate": ("kbmetal.generate.api", "generate"),
    "prepare": ("kbmetal.generate.api", "prepare"),
    "execute": ("kbmetal.generate.api", "execute"),
    "ModelSpec": ("kbmetal.generate.config", "ModelSpec"),
    "load_config": ("kbmetal.generate.config", "load_config"),
    "resolve_models": ("kbmetal.generate.config", "resolve_models"),
    "extract": ("kbmetal.generate.extract", "extract"),
    "make_provider": ("kbmetal.generate.providers", "make_provider"),
    "Request": ("kbmetal.generate.providers", "Request"),
    "RetryPolicy": ("kbmetal.generate.providers", "RetryPolicy"),
    "ResponseCache": ("kbmetal.generate.cache", "ResponseCache"),
    "choose": ("kbmetal.generate.supervisor", "choose"),
    "ConfigError": ("kbmetal.generate.errors", "ConfigError"),
    "GenerationError": ("kbmetal.generate.errors", "GenerationError"),
    "ProviderError": ("kbmetal.generate.errors", "ProviderError"),
    "ProviderUnreachable": ("kbmetal.generate.errors", "ProviderUnreachable"),
}

__all__ = sorted(_LAZY)  # noqa: PLE0605 - the lazy names, listed once


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
