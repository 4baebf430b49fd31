"""Providers through the real openai and anthropic SDKs against the scripted server: answers and
token counts, retries (rate limits with Retry-After, server errors, malformed bodies, timeouts),
failures that must not be retried, and an unreachable server named by its URL."""

from __future__ import annotations

import dataclasses

import pytest
from scripted_server import (
    Reply,
    free_port,
    malformed,
    rate_limited,
    server_error,
    slow,
    text,
    unauthorized,
)

pytestmark = pytest.mark.timeout(60)


def _has_google_genai() -> bool:
    try:
        import google.genai  # noqa: F401
    except ImportError:
        return False
    return True


KINDS = ["openai", "anthropic", pytest.param("google", marks=pytest.mark.skipif(
    not _has_google_genai(), reason="google-genai is not installed (an optional SDK)"))]


def _provider(server, kind="openai", sleeps=None, **fields):
    from kbmetal.generate.config import Config, resolve_models
    from kbmetal.generate.providers import RetryPolicy, make_provider

    url = {"openai": server.openai_url, "anthropic": server.anthropic_url, "google": server.google_url}[kind]
    [spec] = resolve_models([f"{kind}:test-model"], Config(), {"base_url": url, **fields})
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return make_provider(spec, retry=RetryPolicy(base_delay=0.01, jitter=0.0), sleep=record)


def _request(system=True):
    from kbmetal.generate.providers import Request

    messages = ([{"role": "system", "content": "be brief"}] if system else []) + [{"role": "user", "content": "hi"}]
    return Request(tuple(messages), "L1-012", 1, "test")


@pytest.mark.parametrize("kind", KINDS)
def test_answer_tokens_and_key(server, keys, kind):
    server.script("test-model", text("hello there", prompt_tokens=123, completion_tokens=45))
    completion = _provider(server, kind).complete(_request())
    assert completion.text == "hello there"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (123, 45)
    assert completion.tries == 1 and not completion.cached
    [sent] = server.requests
    assert sent.protocol == kind and sent.key == keys[kind]
    assert sent.messages[0] == {"role": "system", "content": "be brief"}  # Anthropic's system parameter too
    if kind == "anthropic":
        assert "system" in sent.body and all(m["role"] != "system" for m in sent.body["messages"])
    if kind == "google":
        assert "systemInstruction" in sent.body and sent.body["generationConfig"]["maxOutputTokens"] == 8192


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_server_error_and_malformed_body_are_retried(server, keys, kind):
    sleeps: list[float] = []
    server.script("test-model", rate_limited(retry_after=7), server_error(503), malformed(), text("finally"))
    completion = _provider(server, kind, sleeps).complete(_request())
    assert completion.text == "finally" and completion.tries == 4
    assert len(server.requests) == 4
    assert sleeps[0] == 7.0  # the server's Retry-After, honoured
    assert sleeps[1:] == [0.02, 0.04]  # exponential backoff for the others


def test_retry_after_ms_and_a_cap_on_long_waits(server, keys):
    from kbmetal.generate.providers.base import retry_after_seconds

    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    sleeps: list[float] = []
    server.script("test-model", rate_limited(retry_after=86400), text("ok"))
    _provider(server, "openai", sleeps).complete(_request())
    assert sleeps == [300.0]


def test_timeout_is_retried(server, keys):
    server.script("test-model", slow(text("too late"), 30.0), text("in time"))
    completion = _provider(server, "openai", timeout=1.5).complete(_request())
    assert completion.text == "in time" and completion.tries == 2


def test_refused_key_is_fatal_and_not_retried(server, keys):
    from kbmetal.generate.errors import ProviderError

    server.script("test-model", unauthorized())
    with pytest.raises(ProviderError) as info:
        _provider(server, "openai").complete(_request())
    assert info.value.fatal and info.value.status == 401
    assert "the key in $OPENAI_API_KEY was refused" in str(info.value)
    assert keys["openai"] not in str(info.value)
    assert len(server.requests) == 1


def test_used_up_quota_is_fatal_not_retried(server, keys):
    from kbmetal.generate.errors import ProviderError

    server.script("test-model", Reply(429, {"error": {"message": "You exceeded your current quota",
                                                      "code": "insufficient_quota"}}))
    with pytest.raises(ProviderError) as info:
        _provider(server, "openai").complete(_request())
    assert info.value.fatal and "quota" in str(info.value)
    assert len(server.requests) == 1


def test_bad_request_fails_at_once_without_disabling_the_model(server, keys):
    from kbmetal.generate.errors import ProviderError

    server.script("test-model", Reply(400, {"error": {"message": "prompt is too long"}}))
    with pytest.raises(ProviderError) as info:
        _provider(server, "anthropic").complete(_request())
    assert not info.value.fatal and info.value.rejected and info.value.status == 400
    assert "prompt is too long" in str(info.value)


def test_retries_run_out(server, keys):
    from kbmetal.generate.errors import ProviderError

    server.script("test-model", *[server_error(502)] * 3)
    with pytest.raises(ProviderError) as info:
        _provider(server, "openai", max_retries=2).complete(_request())
    assert "HTTP 502" in str(info.value) and "after 3 tries" in str(info.value)
    assert not info.value.fatal and not info.value.rejected  # the run stays resumable


def test_unreachable_server_is_named_by_its_url(keys):
    from kbmetal.generate.config import Config, resolve_models
    from kbmetal.generate.errors import ProviderUnreachable
    from kbmetal.generate.providers import RetryPolicy, make_provider

    url = f"http://127.0.0.1:{free_port()}/v1"
    [spec] = resolve_models(["openai:m"], Config(), {"base_url": url, "max_retries": 1})
    provider = make_provider(spec, retry=RetryPolicy(base_delay=0.0), sleep=lambda s: None)
    with pytest.raises(ProviderUnreachable) as info:
        provider.complete(_request())
    assert f"cannot reach openai provider at {url}" in str(info.value)
    assert "rerun the same command to resume" in str(info.value)


def test_local_server_without_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.script("test-model", text("ok"))
    from kbmetal.generate.config import Config, resolve_models
    from kbmetal.generate.providers import make_provider

    [spec] = resolve_models(["vllm:test-model"], Config(), {"base_url": server.openai_url})
    assert spec.key_env == ""
    assert make_provider(spec).complete(_request()).text == "ok"


def test_openai_itself_gets_max_completion_tokens_and_others_max_tokens(server, keys):
    from kbmetal.generate.providers.openai_compat import _is_openai_itself

    assert _is_openai_itself("https://api.openai.com/v1")
    assert not _is_openai_itself(server.openai_url)
    server.script("test-model", text("ok"))
    _provider(server, "openai", max_tokens=1234, temperature=0.3, reasoning_effort="low").complete(_request())
    body = server.requests[0].body
    assert body["max_tokens"] == 1234 and body["temperature"] == 0.3 and body["reasoning_effort"] == "low"


def test_anthropic_reasoning_effort_turns_on_thinking(server, keys):
    from kbmetal.generate.errors import ConfigError

    with pytest.raises(ConfigError, match="max_tokens must be at least"):
        _provider(server, "anthropic", reasoning_effort="high", max_tokens=8000)
    server.script("test-model", Reply(200, {
        "id": "m", "type": "message", "role": "assistant", "model": "test-model", "stop_reason": "end_turn",
        "content": [{"type": "thinking", "thinking": "let me see", "signature": "x"}, {"type": "text", "text": "answer"}],
        "usage": {"input_tokens": 5, "output_tokens": 9}}))
    completion = _provider(server, "anthropic", reasoning_effort="low", max_tokens=8192).complete(_request())
    assert completion.text == "answer"  # the thinking block is not the answer
    body = server.requests[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and "temperature" not in body


def test_cache_identity_never_holds_the_key(server, keys):
    provider = _provider(server, "openai")
    assert keys["openai"] not in repr(provider.cache_identity())
    assert keys["openai"] not in repr(dataclasses.asdict(provider.spec))
