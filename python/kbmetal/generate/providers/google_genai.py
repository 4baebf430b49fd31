"""Google's Gemini API through the official `google-genai` SDK (`pip install google-genai`).

The conversation maps onto `contents` (roles user and model) with the system prompt as
`system_instruction`; `reasoning_effort` becomes a thinking budget. The SDK's own retries stay
off (no retry options given), so the shared retry loop counts every try.
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
    retry_after_seconds,
)

THINKING_BUDGET = {"minimal": 512, "low": 2048, "medium": 8192, "high": 24576}


class GoogleProvider(Provider):
    kind = "google"

    def __init__(self, spec: ModelSpec, key: str | None, **kwargs):
        super().__init__(spec, **kwargs)
        try:
            from google import genai
            from google.genai import errors, types
        except ImportError:
            raise ConfigError(f"model {spec.label} needs Google's SDK: pip install google-genai") from None
        self._types, self._errors = types, errors
        options = types.HttpOptions(timeout=int(spec.timeout * 1000), base_url=spec.base_url)
        self._client = genai.Client(api_key=key or "no-key-needed", http_options=options)

    def _send(self, request: Request) -> Completion:
        types, spec = self._types, self.spec
        contents = [
            types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in request.turns
        ]
        config = types.GenerateContentConfig(
            system_instruction=request.system,
            temperature=spec.temperature,
            max_output_tokens=spec.max_tokens,
            thinking_config=types.ThinkingConfig(thinking_budget=THINKING_BUDGET[spec.reasoning_effort])
            if spec.reasoning_effort else None,
            **({"http_options": types.HttpOptions(extra_body=dict(spec.extra_body))} if spec.extra_body else {}),
        )
        response = self._client.models.generate_content(model=spec.model, contents=contents, config=config)
        candidates = getattr(response, "candidates", None)
        if not candidates:
            feedback = getattr(response, "prompt_feedback", None)
            raise MalformedResponse(f"no candidates in the response{f' ({feedback})' if feedback else ''}")
        candidate = candidates[0]
        parts = getattr(getattr(candidate, "content", None), "parts", None) or []
        # parts marked `thought` are the model's reasoning, not its answer
        text = "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))
        finish = getattr(candidate, "finish_reason", None)
        finish = getattr(finish, "name", finish)
        if not text and finish != "MAX_TOKENS":
            raise MalformedResponse(f"the response has no text (finish reason {finish})")
        return Completion(text=text, finish_reason=str(finish) if finish else None,
                          usage=_usage(getattr(response, "usage_metadata", None)),
                          served_model=getattr(response, "model_version", None))

    def _classify(self, exc: BaseException) -> Failure | None:
        errors = self._errors
        if isinstance(exc, errors.APIError):
            status = int(getattr(exc, "code", 0) or 0)
            detail = " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
            headers = getattr(getattr(exc, "response", None), "headers", None)
            if status == 429:
                return Failure(f"HTTP 429 rate limited ({detail})", retryable=True, status=status,
                               retry_after=retry_after_seconds(headers))
            if status in (408, 409) or status >= 500:
                return Failure(f"HTTP {status} server error ({detail})", retryable=True, status=status,
                               retry_after=retry_after_seconds(headers))
            if status in (401, 403):
                return Failure(f"HTTP {status}: the key in ${self.spec.key_env} was refused ({detail}); check it",
                               retryable=False, status=status, fatal=True)
            if status == 404:
                return Failure(f"HTTP 404: model {self.spec.model!r} was not found ({detail})", retryable=False,
                               status=status, fatal=True)
            return Failure(f"HTTP {status}: the provider rejected the request ({detail})", retryable=False,
                           status=status)
        name = type(exc).__name__
        if "Timeout" in name:
            return Failure(f"no answer within {self.spec.timeout:g} s (timeout)", retryable=True)
        if "Connect" in name or isinstance(exc, ConnectionError):
            return Failure(f"connection failed ({name}: {exc})", retryable=True, unreachable=True)
        if isinstance(exc, ValueError) and "json" in (name + str(exc)).lower():
            return Failure(f"malformed response body ({exc})", retryable=True)
        return super()._classify(exc)


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    thoughts = int(getattr(usage, "thoughts_token_count", 0) or 0)
    return Usage(
        input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
        output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0) + thoughts,  # thoughts are billed as output
        reasoning_tokens=thoughts,
        cached_input_tokens=int(getattr(usage, "cached_content_token_count", 0) or 0),
    )
