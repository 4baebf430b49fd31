"""Tokens and cost: per request, per model, per run.

Prices are the model's config (`input_price`, `output_price`, USD per million tokens); kbmetal
ships no price table, since prices change faster than releases. Without a price, cost is unknown
(None), never 0. Reasoning tokens are billed as output tokens by every provider that reports them,
so they are part of `output_tokens` and shown apart only for information. Input tokens read from
a provider's prompt cache are counted at the full input price (they are billed lower), so cost is
an upper bound where a prompt cache hit. A response served from kbmetal's response cache or by the
replay provider costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0  # includes reasoning tokens
    reasoning_tokens: int = 0
    cached_input_tokens: int = 0  # the provider's prompt cache, billed at its own (lower) rate

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def cost_usd(usage: Usage, input_price: float | None, output_price: float | None) -> float | None:
    """The request's cost in USD, or None when a price it needs is unknown."""
    if usage.total == 0:
        return 0.0
    if (usage.input_tokens and input_price is None) or (usage.output_tokens and output_price is None):
        return None
    return (usage.input_tokens * (input_price or 0.0) + usage.output_tokens * (output_price or 0.0)) / 1e6


@dataclass
class Totals:
    """What a model (or the whole run) spent: requests, tokens, cost, cache hits."""

    requests: int = 0
    failed: int = 0
    cached: int = 0
    usage: Usage = Usage()
    cost: float | None = 0.0  # None once any billed request had an unknown price
    latency_s: float = 0.0

    def add(self, *, usage: Usage, cost: float | None, latency_s: float, cached: bool, ok: bool) -> None:
        self.requests += 1
        self.failed += 0 if ok else 1
        if cached:
            self.cached += 1
            return  # nothing was spent
        self.usage = self.usage + usage
        self.latency_s += latency_s
        if cost is None or self.cost is None:
            self.cost = None
        else:
            self.cost += cost


def totals_by_model(rows: Iterable[dict]) -> dict[str, Totals]:
    """Totals per model from the store's request rows (records.request_rows)."""
    result: dict[str, Totals] = {}
    for row in rows:
        totals = result.setdefault(row["model"], Totals())
        totals.add(
            usage=Usage(row["input_tokens"] or 0, row["output_tokens"] or 0, row["reasoning_tokens"] or 0,
                        row["cached_input_tokens"] or 0),
            cost=row["cost_usd"],
            latency_s=row["latency_s"] or 0.0,
            cached=bool(row["cached"]),
            ok=row["status"] == "ok",
        )
    return result


def combine(totals: Iterable[Totals]) -> Totals:
    out = Totals()
    for t in totals:
        out.requests += t.requests
        out.failed += t.failed
        out.cached += t.cached
        out.usage = out.usage + t.usage
        out.latency_s += t.latency_s
        out.cost = None if (out.cost is None or t.cost is None) else out.cost + t.cost
    return out
