"""The swarm: every model on every problem at once, each with its own refinement chain, requests
bounded per provider, candidates judged as they arrive, and the supervisor's choice at the end.

One thread (the caller's) owns the store and every chain; requests run on daemon threads (so an
interrupted run exits at once), judgements in the judge pool. The loop:

    advance every idle chain until it waits on a request or a verdict (or ends)
    when round 2 is asked and a problem's round-1 chains are all final: open its round-2 chains,
        which show every model the best kernels so far
    wait for any request or verdict; store it; advance its chain

Writes follow the life of a candidate: response (cache, then store) -> candidate -> verdict, each
committed before the next step, so a run killed anywhere resumes without repeating a finished
request or verdict. A provider that cannot be reached, or refuses a model, pauses that model's
chains: the run stays unfinished and the same command resumes it later.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ..store import PlannedCandidate, Store
from . import records
from .accounting import cost_usd
from .cache import ResponseCache, request_key
from .config import ModelSpec
from .errors import NoMoreResponses, ProviderError, ProviderUnreachable
from .extract import extract
from .feedback import one_line, roofline_for
from .judging import JudgePool, JudgeSettings
from .prompts import PromptSettings, Shown
from .providers.base import Completion, Provider, Request
from .refine import Attempt, Chain, LoopSettings
from .supervisor import Entry, Selection, choose, rank

log = logging.getLogger("kbmetal.generate")

MAX_REQUEST_THREADS = 64
MAX_JUDGE_RETRIES = 2  # a candidate whose judge process dies is judged again this many times


@dataclass
class RunPlan:
    run_id: str
    problems: list[Any]  # kbmetal.problems.Problem
    models: list[ModelSpec]
    prompt: PromptSettings
    loop: LoopSettings
    judge: JudgeSettings
    peak_bandwidth_gbs: float | None = None  # for speed feedback; None where unknown


@dataclass
class Outcome:
    run_id: str
    complete: bool  # every chain ended for good: the run is finished
    paused: dict[str, str] = field(default_factory=dict)  # model -> why it stopped this session
    selections: dict[str, Selection] = field(default_factory=dict)


class ProgressView:
    """What the loop reports as it goes; the command line draws bars from it."""

    def chains_added(self, model: str, count: int) -> None: ...
    def chain_note(self, chain: Chain, text: str) -> None: ...
    def chain_ended(self, chain: Chain) -> None: ...
    def problem_done(self, problem_id: str, selection: Selection) -> None: ...
    def warn(self, text: str) -> None: ...


class EndpointLimits:
    """One semaphore per endpoint (server and key): requests in flight across all its models."""

    def __init__(self, models: list[ModelSpec]):
        limits: dict[str, int] = {}
        for spec in models:
            limits[spec.endpoint] = min(limits.get(spec.endpoint, spec.concurrency), spec.concurrency)
        self.limits = limits
        self._semaphores = {endpoint: threading.BoundedSemaphore(n) for endpoint, n in limits.items()}

    def slot(self, endpoint: str) -> threading.BoundedSemaphore:
        return self._semaphores[endpoint]

    @property
    def total(self) -> int:
        return min(MAX_REQUEST_THREADS, sum(self.limits.values()))


class RequestThreads:
    """A pool of daemon threads: a run interrupted mid-request exits without waiting for it."""

    def __init__(self, count: int):
        self._queue: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._work, name=f"kbmetal-request-{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # delivered to the loop, which decides
                future.set_exception(exc)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class GenerationRun:
    def __init__(self, store: Store, plan: RunPlan, providers: dict[str, Provider], judges: JudgePool,
                 cache: ResponseCache | None = None, progress: ProgressView | None = None):
        self.store = store
        self.plan = plan
        self.providers = providers
        self.judges = judges
        self.cache = cache
        self.progress = progress or ProgressView()
        self.limits = EndpointLimits(plan.models)
        self.performance = plan.judge.is_performance
        self.chains: list[Chain] = []
        self.futures: dict[Future, tuple] = {}
        self.disabled: dict[str, str] = {}  # model label -> why (a fatal provider error)
        self.down: dict[str, str] = {}  # endpoint -> why (unreachable)
        self.round_two: set[str] = set()  # problems whose round-2 chains exist
        self._reported: set[str] = set()  # problems the progress view has seen finish
        self._judge_tries: dict[int, int] = {}  # candidate id -> judge processes lost under it
        self._announced: set[tuple[str, str, int]] = set()  # chains whose end the progress view has seen
        self._answers = records.latest_answers(store, plan.run_id)
        self._candidates = records.candidates_by_key(store, plan.run_id)
        for provider in providers.values():
            bind = getattr(provider, "bind", None)
            if bind is not None:
                bind(plan.problems)

    # -- the loop ------------------------------------------------------------------------------

    def execute(self) -> Outcome:
        import torch

        self._torch_version = torch.__version__
        for problem in self.plan.problems:
            for spec in self.plan.models:
                self._open(Chain(problem, spec, 1, 1, self.plan.loop.turns))
        self._threads = RequestThreads(self.limits.total)
        try:
            for chain in list(self.chains):
                self._advance(chain)
            while True:
                # chains restored from the store may end at once: round two can open without any wait
                self._open_round_two()
                self._report_problems()
                if not self.futures:
                    break
                done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
                for future in done:
                    kind, chain, *rest = self.futures.pop(future)
                    chain.busy = False
                    if kind == "request":
                        self._on_response(chain, future, *rest)
                    else:
                        self._on_verdict(chain, future, *rest)
                    self._advance(chain)
        finally:
            self._threads.close()
        return self._finish()

    def _report_problems(self) -> None:
        """Tell the progress view about problems whose chains have all ended."""
        for problem in self.plan.problems:
            if problem.id in self._reported:
                continue
            chains = [c for c in self.chains if c.problem.id == problem.id]
            if self.plan.loop.rounds == 2 and problem.id not in self.round_two and all(c.final for c in chains):
                continue  # its second round is about to open
            if chains and all(c.ended is not None for c in chains):
                self._reported.add(problem.id)
                self.progress.problem_done(problem.id, choose(problem.id, self._entries(chains)))

    def _open(self, chain: Chain) -> None:
        self._load(chain)
        self.chains.append(chain)
        self.progress.chains_added(chain.model.label, 1)

    def _load(self, chain: Chain) -> None:
        """The chain's attempts as the store holds them (resume)."""
        for number in range(chain.first_attempt, chain.first_attempt + chain.turns):
            key = (chain.problem.id, chain.model.label, number)
            row, candidate = self._answers.get(key), self._candidates.get(key)
            if row is None and candidate is None:
                break
            attempt = Attempt(number)
            if row is not None:
                attempt.request_id = row["id"]
                if row["status"] == "ok":
                    attempt.response, attempt.finish_reason = row["response"], row["finish_reason"]
                elif row["status"] == "rejected":
                    attempt.rejected = row["error"]
            if candidate is not None:
                attempt.candidate_id, attempt.source = candidate
                attempt.verdict = records.verdict_of(self.store, attempt.candidate_id)
                self._measure(chain, attempt)
            chain.attempts.append(attempt)
            if attempt.response is None and attempt.candidate_id is None:
                break

    def _advance(self, chain: Chain) -> None:
        """Take synchronous steps until the chain waits on something or ends."""
        while not chain.busy:
            step = chain.next_step(self.plan.loop, self.performance)
            if step.kind == "end":
                if chain.key not in self._announced:  # once per chain, however often it is advanced
                    self._announced.add(chain.key)
                    self.progress.chain_ended(chain)
                    log.info("%s %s round %d: %s", chain.model.label, chain.problem.id, chain.round, step.reason)
                return
            if step.kind == "extract":
                self._extract(chain, step.attempt)
            elif step.kind == "request":
                self._request(chain, step.attempt)
            elif step.kind == "judge":
                self._judge(chain, step.attempt)

    # -- requests ------------------------------------------------------------------------------

    def _request(self, chain: Chain, number: int) -> None:
        spec = chain.model
        blocked = self.disabled.get(spec.label) or self.down.get(spec.endpoint)
        if blocked:
            chain.pause(blocked)
            return
        if not chain.attempts or chain.attempts[-1].number != number:
            chain.attempts.append(Attempt(number))
        provider = self.providers[spec.label]
        messages = chain.messages(number, self.plan.prompt, self.plan.loop)
        key = request_key(provider.cache_identity(), messages)
        if self.cache is not None and provider.cacheable:
            hit = self.cache.get(key)
            if hit is not None:
                self._store_response(chain, number, messages, key, Completion.from_record(hit, cached=True))
                return
        self.progress.chain_note(chain, f"attempt {number}: asking")
        request = Request(tuple(messages), chain.problem.id, number, spec.label)
        future = self._threads.submit(self._ask, provider, request)
        self.futures[future] = ("request", chain, number, messages, key)
        chain.busy = True

    def _ask(self, provider: Provider, request: Request) -> Completion:
        with self.limits.slot(provider.spec.endpoint):
            return provider.complete(request)

    def _on_response(self, chain: Chain, future: Future, number: int, messages: list, key: str) -> None:
        spec = chain.model
        provider = self.providers[spec.label]
        try:
            completion = future.result()
        except NoMoreResponses as exc:
            if chain.attempts and chain.attempts[-1].number == number and chain.attempts[-1].response is None:
                chain.attempts.pop()
            chain.end(str(exc))
            return
        except ProviderError as exc:
            self._request_failed(chain, number, messages, key, exc)
            return
        except Exception as exc:  # the SDK or this code failed in a way not foreseen: keep going
            log.error("%s %s #%d: unexpected error\n%s", spec.label, chain.problem.id, number,
                      "".join(traceback.format_exception(exc)))
            self._request_failed(chain, number, messages, key, ProviderError(f"unexpected error: {type(exc).__name__}: {exc}"))
            return
        if self.cache is not None and provider.cacheable:
            self.cache.put(key, completion.to_record())  # before the store: a kill here costs nothing
        self._store_response(chain, number, messages, key, completion)

    def _record(self, chain: Chain, number: int, messages: list, key: str, **fields: Any) -> int:
        spec = chain.model
        params = {k: v for k, v in self.providers[spec.label].cache_identity().items() if k not in ("kind", "base_url", "model")}
        return records.insert_request(self.store, records.RequestRecord(
            run_id=self.plan.run_id, problem_id=chain.problem.id, model=spec.label, attempt=number, round=chain.round,
            provider=spec.provider, provider_model=spec.model, base_url=spec.base_url, request_key=key,
            messages=messages, params=params, **fields))

    def _store_response(self, chain: Chain, number: int, messages: list, key: str, completion: Completion) -> None:
        spec = chain.model
        usage = completion.usage
        cost = 0.0 if completion.cached or not self.providers[spec.label].cacheable else cost_usd(
            usage, spec.input_price, spec.output_price)
        request_id = self._record(
            chain, number, messages, key, status="ok", response=completion.text, finish_reason=completion.finish_reason,
            served_model=completion.served_model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, cached_input_tokens=usage.cached_input_tokens, cost_usd=cost,
            latency_s=completion.latency_s, tries=completion.tries, cached=completion.cached)
        attempt = chain.attempt(number)
        attempt.request_id, attempt.response, attempt.finish_reason = request_id, completion.text, completion.finish_reason
        log.info("%s %s #%d: %s, %d+%d tokens, %.1f s, %d tries", spec.label, chain.problem.id, number,
                 "cached" if completion.cached else "answered", usage.input_tokens, usage.output_tokens,
                 completion.latency_s, completion.tries)

    def _request_failed(self, chain: Chain, number: int, messages: list, key: str, exc: ProviderError) -> None:
        spec = chain.model
        self._record(chain, number, messages, key, status="rejected" if exc.rejected else "error", error=str(exc),
                     tries=exc.tries)
        if exc.rejected:  # this request only: the chain ends on it, the model goes on
            chain.attempt(number).rejected = str(exc)
            return
        if isinstance(exc, ProviderUnreachable):
            self.down[spec.endpoint] = str(exc)
        elif exc.fatal:
            self.disabled[spec.label] = str(exc)
        if spec.label not in self.disabled and spec.endpoint not in self.down:
            self.disabled[spec.label] = str(exc)  # retries used up: this model rests until the next run
        log.error("%s", exc)
        chain.pause(str(exc))

    # -- candidates and verdicts ---------------------------------------------------------------

    def _extract(self, chain: Chain, number: int) -> None:
        attempt = chain.attempt(number)
        found = extract(attempt.response, attempt.finish_reason)
        attempt.extraction = found
        if found.ok and chain.repeats(found.source):
            attempt.source = found.source  # no candidate: the chain ends on it
            return
        spec = chain.model
        candidate_id = self.store.add_candidate(
            self.plan.run_id,
            PlannedCandidate(chain.problem, found.source or "", origin=spec.label, model=spec.label, attempt=number),
            parent_id=chain.previous_candidate(number))
        if attempt.request_id is not None:
            records.link_candidate(self.store, attempt.request_id, candidate_id)
        attempt.candidate_id, attempt.source = candidate_id, found.source or ""
        if not found.ok:
            self._no_code(chain, attempt, found.reason)

    def _no_code(self, chain: Chain, attempt: Attempt, reason: str) -> None:
        verdict = self.plan.judge.no_code(chain.problem.id, reason)
        self.store.record_verdict(attempt.candidate_id, verdict)
        attempt.verdict = records.verdict_of(self.store, attempt.candidate_id)
        self.progress.chain_note(chain, f"attempt {attempt.number}: no code")

    def _judge(self, chain: Chain, number: int) -> None:
        attempt = chain.attempt(number)
        if not attempt.source:  # stored before its no-code verdict was: say it again
            found = extract(attempt.response, attempt.finish_reason)
            self._no_code(chain, attempt, found.reason if not found.ok else "the stored candidate is empty")
            return
        judge = self.plan.judge
        task = judge.task(attempt.candidate_id, chain.problem, attempt.source,
                          judge.cached_baselines(self.store, chain.problem))
        self.progress.chain_note(chain, f"attempt {number}: judging")
        self.futures[self.judges.submit(task)] = ("verdict", chain, number)
        chain.busy = True

    def _on_verdict(self, chain: Chain, future: Future, number: int) -> None:
        from ..executors.base import TaskResult

        attempt = chain.attempt(number)
        try:
            result = future.result()
        except BrokenProcessPool:
            # the judge process died under it (killed, out of memory), not the candidate's doing:
            # judge it again in a fresh pool, a bounded number of times
            tries = self._judge_tries[attempt.candidate_id] = self._judge_tries.get(attempt.candidate_id, 0) + 1
            if tries <= MAX_JUDGE_RETRIES:
                log.warning("%s %s #%d: the judge process died; judging again", chain.model.label, chain.problem.id,
                            number)
                self._judge(chain, number)
                return
            result = TaskResult(attempt.candidate_id, harness_error="the judge process died repeatedly")
        except Exception as exc:  # the judge itself failed: a harness verdict, as the evaluator's executors give
            result = TaskResult(attempt.candidate_id, harness_error=f"the judge process failed: {type(exc).__name__}: {exc}")
        verdict = self.plan.judge.verdict(chain.problem.id, result)
        self.store.record_verdict(attempt.candidate_id, verdict, torch_version=self._torch_version)
        attempt.verdict = records.verdict_of(self.store, attempt.candidate_id)
        self._measure(chain, attempt)
        self.progress.chain_note(chain, f"attempt {number}: {'pass' if verdict.passed else 'fail'}")
        log.info("%s %s #%d: %s", chain.model.label, chain.problem.id, number, verdict.summary())

    def _measure(self, chain: Chain, attempt: Attempt) -> None:
        if attempt.verdict is not None and self.performance:
            attempt.roofline = roofline_for(chain.problem, attempt.verdict, self.plan.peak_bandwidth_gbs)

    # -- round two and the end -----------------------------------------------------------------

    def _entries(self, chains: list[Chain]) -> list[Entry]:
        return [Entry(a.candidate_id, c.model.label, a.number, a.verdict)
                for c in chains for a in c.attempts if a.candidate_id is not None and a.verdict is not None]

    def _open_round_two(self) -> None:
        if self.plan.loop.rounds < 2:
            return
        for problem in self.plan.problems:
            if problem.id in self.round_two:
                continue
            first = [c for c in self.chains if c.problem.id == problem.id and c.round == 1]
            if not all(c.final for c in first):
                continue
            self.round_two.add(problem.id)
            entries = self._entries(first)
            if not self.performance and any(e.eligible for e in entries):
                continue  # a correct kernel exists and speed cannot be measured: nothing to gain
            sources = {(c.model.label, a.number): a.source for c in first for a in c.attempts}
            shown = [Shown(e.model, e.attempt, sources[(e.model, e.attempt)], one_line(e.verdict))
                     for e in rank(entries) if sources.get((e.model, e.attempt))][: self.plan.loop.show_best]
            for spec in self.plan.models:
                chain = Chain(problem, spec, 2, self.plan.loop.turns + 1, self.plan.loop.turns, shown=shown)
                self._open(chain)
                self._advance(chain)

    def _finish(self) -> Outcome:
        outcome = Outcome(self.plan.run_id, complete=all(c.final for c in self.chains))
        for chain in self.chains:
            if chain.paused:
                outcome.paused.setdefault(chain.model.label, chain.paused)
        for problem in self.plan.problems:
            chains = [c for c in self.chains if c.problem.id == problem.id]
            selection = choose(problem.id, self._entries(chains))
            selection.reasons["complete"] = all(c.final for c in chains)
            chosen = selection.chosen
            records.record_selection(self.store, self.plan.run_id, problem.id, chosen.candidate_id if chosen else None,
                                     chosen.model if chosen else None, chosen.attempt if chosen else None,
                                     selection.reasons)
            outcome.selections[problem.id] = selection
        if outcome.complete:
            self.store.finish_run(self.plan.run_id)
        return outcome
