"""The supervisor: per problem, the fastest candidate that passed every check.

Rules, in order:
1. Eligible: the verdict passed (every trial and guard) and carries no flag for human review (a
   flag means, e.g., faster than the hardware allows: not a result to pick unseen).
2. The fastest eligible candidate by median time, where timings are performance. Two times tie
   when they differ by less than `TIE_SHARE` (3%) of the faster, or by less than half the larger
   interquartile range: such a difference is noise, not speed.
3. Among the tied, the smallest error margin wins (the candidate that used least of its error
   allowance); then the earlier candidate.
4. Where timings are not performance (the sim), speed cannot decide: every eligible candidate ties
   on speed, and the margin decides. A timed candidate ranks before an untimed one.

The choice is stored with the whole ranking, and for each candidate the reason it was or was
not chosen (records.record_selection), so a reader can check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..verdict import STAGES, Verdict

TIE_SHARE = 0.03


@dataclass(frozen=True)
class Entry:
    candidate_id: int
    model: str
    attempt: int
    verdict: Verdict

    @property
    def eligible(self) -> bool:
        return self.verdict.passed and not self.verdict.flagged

    @property
    def time_ms(self) -> float | None:
        t = self.verdict.timing
        return t.median_ms if t is not None and t.is_performance and t.median_ms > 0 else None

    @property
    def spread_ms(self) -> float:
        t = self.verdict.timing
        return t.iqr_ms if t is not None and t.iqr_ms else 0.0

    @property
    def margin(self) -> float:
        return self.verdict.margin if self.verdict.margin is not None else float("inf")


@dataclass(frozen=True)
class Selection:
    problem_id: str
    chosen: Entry | None
    reasons: dict[str, Any]


def ties(a: Entry, b: Entry, share: float = TIE_SHARE) -> bool:
    """Whether two timed candidates are equally fast within measurement noise."""
    ta, tb = a.time_ms, b.time_ms
    if ta is None or tb is None:
        return ta is None and tb is None
    return abs(ta - tb) <= max(share * min(ta, tb), 0.5 * max(a.spread_ms, b.spread_ms))


def _progress(entry: Entry) -> int:
    """How far a failing candidate got: later stages rank first among failures."""
    stage = entry.verdict.stage
    return STAGES.index(stage) if stage in STAGES else -1


def rank(entries: list[Entry], share: float = TIE_SHARE) -> list[Entry]:
    """Every candidate, best first: eligible ones by the rules above, then the rest by how far
    they got and their margin."""
    eligible = [e for e in entries if e.eligible]
    timed = sorted((e for e in eligible if e.time_ms is not None), key=lambda e: (e.time_ms, e.candidate_id))
    ordered: list[Entry] = []
    while timed:  # peel off the fastest group of ties, ordered by margin
        group = [e for e in timed if ties(e, timed[0], share)]
        ordered += sorted(group, key=lambda e: (e.margin, e.candidate_id))
        timed = [e for e in timed if e not in group]
    ordered += sorted((e for e in eligible if e.time_ms is None), key=lambda e: (e.margin, e.candidate_id))
    rest = [e for e in entries if not e.eligible]
    ordered += sorted(rest, key=lambda e: (not e.verdict.passed, -_progress(e), e.margin, e.candidate_id))
    return ordered


def _why_not(entry: Entry, chosen: Entry | None, share: float) -> str:
    v = entry.verdict
    if not v.passed:
        reason = (v.reason or "").splitlines()[0][:160] if v.reason else ""
        return f"failed at {v.stage}: {reason}"
    if v.flagged:
        flags = ", ".join(g.guard for g in v.guards if g.severity == "flag")
        return f"flagged for review ({flags})"
    if chosen is None:
        return ""
    if entry.time_ms is not None and chosen.time_ms is not None and not ties(entry, chosen, share):
        return f"slower: {entry.time_ms:.4g} ms against {chosen.time_ms:.4g} ms"
    if entry.time_ms is None and chosen.time_ms is not None:
        return "not timed"
    return f"as fast within noise, larger error margin ({entry.margin:.3g} against {chosen.margin:.3g})" \
        if entry.margin > chosen.margin else "as fast and as accurate; an earlier candidate was chosen"


def choose(problem_id: str, entries: list[Entry], share: float = TIE_SHARE) -> Selection:
    ordered = rank(entries, share)
    chosen = ordered[0] if ordered and ordered[0].eligible else None
    performance = any(e.time_ms is not None for e in entries if e.eligible)
    if chosen is None:
        summary = f"no candidate passed every check ({len(entries)} judged)"
    elif not performance:
        summary = (f"{chosen.model} attempt {chosen.attempt}: correct with the smallest error margin "
                   f"({chosen.margin:.3g}); timings are not performance here, so speed did not decide")
    else:
        summary = f"{chosen.model} attempt {chosen.attempt}: the fastest correct candidate ({chosen.time_ms:.4g} ms)"
        rivals = [e for e in ordered[1:] if e.eligible and e.time_ms is not None and ties(e, chosen, share)]
        if rivals:
            summary += f", tied with {len(rivals)} other(s) within noise and chosen for its smaller error margin"
    ranking = [
        {
            "candidate_id": e.candidate_id,
            "model": e.model,
            "attempt": e.attempt,
            "passed": e.verdict.passed,
            "flagged": e.verdict.flagged,
            "time_ms": e.time_ms,
            "iqr_ms": e.spread_ms if e.time_ms is not None else None,
            "margin": e.verdict.margin,
            "speedup": e.verdict.speedup,
            "speedup_compile": e.verdict.speedup_compile,
            "why": "chosen" if e is chosen else _why_not(e, chosen, share),
        }
        for e in ordered
    ]
    return Selection(problem_id, chosen, {
        "summary": summary,
        "rule": "eligible = passed with no flag; fastest median time (ties within "
                f"{100 * share:g}% or half the larger spread); then smallest error margin; then earliest",
        "timings_are_performance": performance,
        "ranking": ranking,
    })
