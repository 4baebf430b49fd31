"""OpenAI's Chat Completions API through the official `openai` SDK: OpenAI itself, and every
server that speaks the same protocol (vLLM, SGLang, ollama, llama.cpp, OpenRouter) by base URL."""

from __future__ import annotations

from urllib.parse import urlparse

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

# A placeholder for local servers that need no key: the SDK refuses an empty one.
_NO_KEY = "no-key-needed"


def _is_openai_itself(base_url: str | None) -> bool:
    host = urlparse(base_url or "").hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


class OpenAIProvider(Provider):
    kind = "openai"

    def __init__(self, spec: ModelSpec, key: str | None, **kwargs):
        super().__init__(spec, **kwargs)
        try:
            import openai
        except ImportError:
            raise ConfigError(
                f"model {spec.label} needs the openai SDK: pip install 'kbmetal[gen]' (or pip install openai)"
            ) from None
        self._sdk = openai
        self._client = openai.OpenAI(api_key=key or _NO_KEY, base_url=spec.base_url, timeout=spec.timeout,
                                     max_retries=0)
        # OpenAI's own reasoning models take max_completion_tokens; compatible servers max_tokens
        self._tokens_param = "max_completion_tokens" if _is_openai_itself(spec.base_url) else "max_tokens"

    def _send(self, request: Request) -> Completion:
        spec = self.spec
        params: dict = {"model": spec.model, "messages": [dict(m) for m in request.messages],
                        self._tokens_param: spec.max_tokens}
        if spec.temperature is not None:
            params["temperature"] = spec.temperature
        if spec.reasoning_effort is not None:
            params["reasoning_effort"] = spec.reasoning_effort
        if spec.extra_body:
            params["extra_body"] = dict(spec.extra_body)
        response = self._client.chat.completions.create(**params)
        choices = getattr(response, "choices", None)
        if not choices:
            raise MalformedResponse("no choices in the completion")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            if getattr(choice, "finish_reason", None) == "length":
                text = ""  # cut off before any visible text (all reasoning): extraction says so
            else:
                raise MalformedResponse("the completion's message has no text content")
        return Completion(text=text, finish_reason=getattr(choice, "finish_reason", None),
                          usage=_usage(getattr(response, "usage", None)),
                          served_model=getattr(response, "model", None))

    def _classify(self, exc: BaseException) -> Failure | None:
        return classify_http_error(exc, self._sdk, self.spec.key_env, self.spec) or super()._classify(exc)


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    completion_details = getattr(usage, "completion_tokens_details", None)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", 0) or 0),
        cached_input_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
    )
