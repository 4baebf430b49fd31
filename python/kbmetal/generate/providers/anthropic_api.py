"""Anthropic's Messages API through the official `anthropic` SDK.

`reasoning_effort` turns on extended thinking with a token budget per level; the API then
requires the default temperature, and max_tokens must leave room for the answer after the budget.
"""

from __future__ import annotations

from ..accounting import Usage
from ..config import ModelSpec
from ..errors import ConfigError
from .base import (
    Completion,
    Failure,
    MalformedResponse,
    Provider,
    Request,
    classify_http_error,
)

THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
_ANSWER_ROOM = 4096  # tokens max_tokens must hold beyond the thinking budget


class AnthropicProvider(Provider):
    kind = "anthropic"

    def __init__(self, spec: ModelSpec, key: str | None, **kwargs):
        super().__init__(spec, **kwargs)
        try:
            import anthropic
        except ImportError:
            raise ConfigError(
                f"model {spec.label} needs the anthropic SDK: pip install 'kbmetal[gen]' (or pip install anthropic)"
            ) from None
        self._budget = THINKING_BUDGET.get(spec.reasoning_effort) if spec.reasoning_effort else None
        if self._budget is not None and spec.max_tokens < self._budget + _ANSWER_ROOM:
            raise ConfigError(
                f"model {spec.label}: reasoning_effort {spec.reasoning_effort!r} thinks for up to {self._budget} "
                f"tokens, so max_tokens must be at least {self._budget + _ANSWER_ROOM} (it is {spec.max_tokens})"
            )
        self._sdk = anthropic
        self._client = anthropic.Anthropic(api_key=key or "no-key-needed", base_url=spec.base_url,
                                           timeout=spec.timeout, max_retries=0)

    def _send(self, request: Request) -> Completion:
        spec = self.spec
        params: dict = {"model": spec.model, "max_tokens": spec.max_tokens,
                        "messages": [dict(m) for m in request.turns]}
        if request.system is not None:
            params["system"] = request.system
        if self._budget is not None:
            params["thinking"] = {"type": "enabled", "budget_tokens": self._budget}
        elif spec.temperature is not None:
            params["temperature"] = min(spec.temperature, 1.0)  # Anthropic's range is 0..1
        if spec.extra_body:
            params["extra_body"] = dict(spec.extra_body)
        response = self._client.messages.create(**params)
        blocks = getattr(response, "content", None)
        if not isinstance(blocks, list):
            raise MalformedResponse("no content blocks in the message")
        # thinking blocks are the model's scratchpad; the answer is the text blocks
        text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", None) == "text")
        stop = getattr(response, "stop_reason", None)
        if not text and stop != "max_tokens":
            raise MalformedResponse("the message has no text block")
        return Completion(text=text, finish_reason=stop, usage=_usage(getattr(response, "usage", None)),
                          served_model=getattr(response, "model", None))

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_http_error(exc, self._sdk, self.spec.key_env, self.spec) or super()._classify(exc)


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    cached = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
    return Usage(
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0) + cached,
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        cached_input_tokens=cached,
    )
