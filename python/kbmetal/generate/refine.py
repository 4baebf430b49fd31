"""Refinement: one model's chain of attempts at one problem, each turn fed the previous verdict.

A chain is a small state machine over what the store holds for (problem, model, attempts):

    no attempt yet, or the last one judged and the chain goes on  -> request the next attempt
    the last attempt has no response (a failed request)           -> request it again
    a response without a candidate                                -> extract the solution
    a candidate without a verdict                                 -> judge it
    otherwise                                                     -> the chain ends, with why

`next_step()` reads only that state, and every prompt is built from stored records (the problem,
earlier responses, stored verdicts), so a chain rebuilt from the store after a kill takes up
exactly where it stopped and asks the same requests again (which the response cache answers).

A chain ends when its turns are used, when its kernel is correct and there is nothing left to
improve (timings are not performance here, or `stop_when_correct`), when the model repeats its
previous answer, when the provider rejects a request for good, or when a replay has no more
answers. It pauses (ends for this session, and resumes on the next) when its provider cannot be
reached or refuses the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..verdict import Verdict
from .config import ModelSpec
from .extract import Extraction
from .feedback import Roofline, describe
from .prompts import PromptSettings, Shown, first_messages

MAX_ECHOED_RESPONSE = 4000  # characters of an answer with no code, echoed back in the conversation


@dataclass(frozen=True)
class LoopSettings:
    turns: int = 3  # attempts per model per problem per round
    rounds: int = 1  # 2: a second round showing every model the best kernels so far
    history: int = 2  # earlier attempts (code and feedback) kept in each conversation
    show_best: int = 3  # kernels shown in the second round
    stop_when_correct: bool = False  # end a chain at its first correct kernel even where speed counts

    def __post_init__(self) -> None:
        if self.turns < 1:
            raise ValueError("turns must be at least 1")
        if self.rounds not in (1, 2):
            raise ValueError("rounds must be 1 or 2")
        if self.history < 0 or self.show_best < 1:
            raise ValueError("history must be at least 0 and show_best at least 1")


@dataclass
class Attempt:
    number: int
    request_id: int | None = None
    response: str | None = None
    finish_reason: str | None = None
    rejected: str | None = None  # the provider refused this request for good
    candidate_id: int | None = None
    source: str | None = None  # "" when the response held no usable code
    extraction: Extraction | None = None
    verdict: Verdict | None = None
    roofline: Roofline | None = None  # the problem's traffic bound, for speed feedback


@dataclass(frozen=True)
class Step:
    kind: str  # "request" | "extract" | "judge" | "end"
    attempt: int = 0
    reason: str = ""


@dataclass
class Chain:
    problem: Any  # kbmetal.problems.Problem
    model: ModelSpec
    round: int
    first_attempt: int
    turns: int
    shown: list[Shown] = field(default_factory=list)  # the best kernels so far, in round 2
    attempts: list[Attempt] = field(default_factory=list)
    ended: str | None = None  # why the chain ended
    paused: str | None = None  # why it stopped for this session (resumable)
    busy: bool = False  # a request or a judgement is in flight

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.problem.id, self.model.label, self.round)

    @property
    def final(self) -> bool:
        """Ended for good: nothing left to do on resume either."""
        return self.ended is not None and self.paused is None

    def attempt(self, number: int) -> Attempt:
        return next(a for a in self.attempts if a.number == number)

    def end(self, reason: str) -> None:
        self.ended = reason

    def pause(self, reason: str) -> None:
        self.paused = reason
        self.ended = reason

    def next_step(self, settings: LoopSettings, timings_are_performance: bool) -> Step:
        if self.ended is not None:
            return Step("end", reason=self.ended)
        if not self.attempts:
            return Step("request", self.first_attempt)
        last = self.attempts[-1]
        if last.rejected is not None:
            return self._end(f"the provider rejected attempt {last.number}: {last.rejected}")
        if last.response is None:
            return Step("request", last.number)
        if last.candidate_id is None and last.source is None:
            return Step("extract", last.number)
        if last.candidate_id is None:  # extracted, but a repeat of an earlier answer
            return self._end(f"attempt {last.number} repeated an earlier answer")
        if last.verdict is None:
            return Step("judge", last.number)
        if last.verdict.passed and (not timings_are_performance or settings.stop_when_correct):
            why = "correct" + ("" if timings_are_performance else " (timings are not performance here: nothing to speed up)")
            return self._end(f"attempt {last.number} is {why}")
        if len(self.attempts) >= self.turns:
            return self._end(f"used its {self.turns} turn(s)")
        return Step("request", last.number + 1)

    def _end(self, reason: str) -> Step:
        self.end(reason)
        return Step("end", reason=reason)

    def repeats(self, source: str) -> bool:
        """Whether `source` is an answer this chain gave before."""
        return any(a.source == source for a in self.attempts if a.source)

    def previous_candidate(self, number: int) -> int | None:
        earlier = [a.candidate_id for a in self.attempts if a.number < number and a.candidate_id is not None]
        return earlier[-1] if earlier else None

    def messages(self, number: int, prompt: PromptSettings, settings: LoopSettings) -> list[dict[str, str]]:
        """The conversation for attempt `number`: the opening prompt, then the last `history`
        judged attempts, each as the model's answer (its code) and the verdict on it."""
        messages = first_messages(self.problem, prompt, shown=self.shown)
        judged = [a for a in self.attempts if a.number < number and a.verdict is not None]
        for earlier in judged[-settings.history:] if settings.history else []:
            messages.append({"role": "assistant", "content": _as_answer(earlier)})
            messages.append({"role": "user", "content": describe(earlier.verdict, attempt=earlier.number,
                                                                 roofline=earlier.roofline)})
        return messages


def _as_answer(attempt: Attempt) -> str:
    """What the model said, as the conversation shows it: the extracted module, or (when nothing
    could be extracted) the start of its answer."""
    if attempt.source:
        return f"```python\n{attempt.source.rstrip()}\n```"
    text = (attempt.response or "").strip()
    return text if len(text) <= MAX_ECHOED_RESPONSE else text[:MAX_ECHOED_RESPONSE] + "\n... (cut)"
