"""What every provider is: one method that answers a conversation, with retries around it.

A provider subclass does one HTTP call in `_send` and says in `_classify` what a failure means
(retry? after how long? is the model unusable?). `complete` is the shared retry loop: rate limits,
server errors, timeouts and malformed bodies are retried with exponential backoff and jitter,
honouring the server's Retry-After; anything else fails at once. The SDKs' own retries are turned
off, so there is one policy, and every try is counted.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..accounting import Usage
from ..config import ModelSpec
from ..errors import ProviderError, ProviderUnreachable

log = logging.getLogger("kbmetal.generate")


@dataclass(frozen=True)
class Request:
    """A conversation for one attempt of one chain. `messages` are {"role", "content"} dicts:
    an optional system message first, then user and assistant turns, ending with a user turn."""

    messages: tuple[dict[str, str], ...]
    problem_id: str
    attempt: int
    model: str  # the model's label in the run

    @property
    def system(self) -> str | None:
        return self.messages[0]["content"] if self.messages and self.messages[0]["role"] == "system" else None

    @property
    def turns(self) -> list[dict[str, str]]:
        """The messages after the system message."""
        return list(self.messages[1:] if self.system is not None else self.messages)


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None  # "stop", "length" (cut off at max tokens), ...
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0  # the successful try, request to full response
    tries: int = 1
    cached: bool = False  # served from the response cache
    served_model: str | None = None  # the model name the server reported

    @property
    def truncated(self) -> bool:
        return self.finish_reason in ("length", "max_tokens", "MAX_TOKENS")

    def to_record(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": vars(self.usage),
            "latency_s": self.latency_s,
            "served_model": self.served_model,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any], *, cached: bool) -> Completion:
        return cls(
            text=str(data["text"]),
            finish_reason=data.get("finish_reason"),
            usage=Usage(**data.get("usage", {})),
            latency_s=float(data.get("latency_s") or 0.0),
            tries=0 if cached else 1,
            cached=cached,
            served_model=data.get("served_model"),
        )


@dataclass(frozen=True)
class Failure:
    """What a failed try means."""

    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None  # seconds the server asked us to wait
    unreachable: bool = False  # no HTTP answer at all
    fatal: bool = False  # no later request to this model can succeed


class MalformedResponse(Exception):
    """The server answered 200 with a body that is not a usable completion."""


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 1.0  # first backoff, seconds; doubles per retry
    max_delay: float = 60.0
    max_retry_after: float = 300.0  # a longer Retry-After is cut to this
    jitter: float = 0.5  # backoff is scaled by a factor in [1 - jitter, 1]

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return backoff * (1.0 - self.jitter * rng.random())


class Provider:
    kind = ""
    cacheable = True  # identical requests may be answered from the response cache

    def __init__(self, spec: ModelSpec, retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep):
        self.spec = spec
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()

    def describe(self) -> str:
        where = f" at {self.spec.base_url}" if self.spec.base_url else ""
        return f"{self.spec.label} ({self.kind}{where})"

    def cache_identity(self) -> dict[str, Any]:
        """Everything besides the messages that changes the answer (never the key)."""
        spec = self.spec
        return {
            "kind": self.kind,
            "base_url": spec.base_url,
            "model": spec.model,
            "temperature": spec.temperature,
            "max_tokens": spec.max_tokens,
            "reasoning_effort": spec.reasoning_effort,
            "extra_body": spec.extra_body,
        }

    def complete(self, request: Request) -> Completion:
        """The model's answer, after as many retries as the policy allows; ProviderError else."""
        tries = 0
        while True:
            tries += 1
            started = time.monotonic()
            try:
                completion = self._send(request)
            except Exception as exc:  # classified below; what is not ours propagates
                failure = self._classify(exc)
                if failure is None:
                    raise
                if failure.retryable and tries <= self.spec.max_retries:
                    wait = self.retry.delay(tries, failure.retry_after, self._rng)
                    why = " (Retry-After)" if failure.retry_after is not None else ""
                    log.warning("%s %s #%d: %s; retry %d of %d in %.1f s%s", self.spec.label, request.problem_id,
                                request.attempt, failure.message, tries, self.spec.max_retries, wait, why)
                    self._sleep(wait)
                    continue
                raise self._give_up(failure, tries) from None
            completion.latency_s = time.monotonic() - started
            completion.tries = tries
            return completion

    def _give_up(self, failure: Failure, tries: int) -> ProviderError:
        after = f" after {tries} tries" if tries > 1 else ""
        if failure.unreachable:
            return ProviderUnreachable(
                f"cannot reach {self.kind} provider at {self.spec.base_url or 'its default URL'} for model "
                f"{self.spec.label}: {failure.message}{after}; check that the server runs and the base_url is "
                "right (stored work is kept: rerun the same command to resume)",
                status=failure.status, tries=tries,
            )
        return ProviderError(f"{self.describe()}: {failure.message}{after}", fatal=failure.fatal,
                             rejected=not failure.retryable and not failure.fatal, status=failure.status, tries=tries)

    # -- what a subclass provides -------------------------------------------------------------

    def _send(self, request: Request) -> Completion:
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, MalformedResponse):
            return Failure(f"malformed response: {exc}", retryable=True)
        return None


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, or `retry-after` in seconds or as a date."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1e3)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def classify_http_error(exc: BaseException, sdk: Any, key_env: str, spec: ModelSpec) -> Failure | None:
    """The shared reading of the openai and anthropic SDKs' exceptions (they have the same
    shape: APIStatusError with .status_code and .response, APIConnectionError, APITimeoutError,
    APIResponseValidationError)."""
    if isinstance(exc, sdk.APITimeoutError):
        return Failure(f"no answer within {spec.timeout:g} s (timeout)", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        return Failure(f"connection failed ({detail})", retryable=True, unreachable=True)
    if isinstance(exc, sdk.APIResponseValidationError):
        return Failure(f"malformed response body ({exc})", retryable=True)
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        detail = _error_detail(exc)
        if status == 429:
            if "insufficient_quota" in detail or ("quota" in detail.lower() and "exceeded" in detail.lower()):
                return Failure(f"HTTP 429: the account's quota is used up ({detail})", retryable=False,
                               status=status, fatal=True)
            return Failure(f"HTTP 429 rate limited ({detail})", retryable=True, status=status,
                           retry_after=retry_after_seconds(headers))
        if status in (408, 409) or status >= 500:
            return Failure(f"HTTP {status} server error ({detail})", retryable=True, status=status,
                           retry_after=retry_after_seconds(headers))
        if status in (401, 403):
            where = f"${key_env}" if key_env else "the request (no key variable is configured)"
            return Failure(f"HTTP {status}: the key in {where} was refused ({detail}); check it", retryable=False,
                           status=status, fatal=True)
        if status == 404:
            return Failure(f"HTTP 404: model {spec.model!r} or the endpoint was not found at {spec.base_url} "
                           f"({detail}); check the model name and base_url", retryable=False, status=status, fatal=True)
        return Failure(f"HTTP {status}: the provider rejected the request ({detail})", retryable=False, status=status)
    if isinstance(exc, ValueError) and "json" in type(exc).__name__.lower() + str(exc).lower():
        return Failure(f"malformed response body ({exc})", retryable=True)
    return None


def _error_detail(exc: BaseException) -> str:
    """The server's own error message, short."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            message = error.get("message") or error.get("type") or error.get("code")
            code = error.get("code") or error.get("type")
            if code and message and str(code) not in str(message):
                message = f"{message} [{code}]"
        elif isinstance(error, str):
            message = error
    text = str(message or getattr(exc, "message", None) or exc)
    return " ".join(text.split())[:300]
