"""The judge: one candidate, from source to verdict.

    static guards on the source
    -> the problem prepared (prepared.py): secret seeds, trial plan, reference models and each
       trial's reference outputs with calibrated tolerances, kept for the next candidate of it
    -> a worker process (pre-started, its device ready): the exchange region attached, the
       candidate imported, ModelNew built from the reference's seed
    -> trials: inputs placed in the region, outputs read back into the judge's own memory and
       compared here, runtime guards
    -> the held-out trial, timing with the wall-clock envelope, baselines, speed of light
    -> Verdict

The judge never imports the candidate. It stops at the first failure: the verdict then says
where (`stage`), why (`reason`, `error_kind`), and carries the evidence (mismatch report, guard
findings, compiler log, the tail of the worker's log).

Where the time goes is in `verdict.durations` (seconds): one entry per stage (static, prepare,
import, init, correctness, heldout, timing), and the parts inside them that are the judge's own work:
`reference` (drawing inputs, running and calibrating the reference; zero for a problem already
prepared), `exchange` (moving tensors to and from the worker), `compare`, `compile` (importing the
candidate, its kernels' compilation included) and `worker_wait` (start-up of the candidate's
process that pre-starting did not hide). `verdict.options["exchange"]` says how tensors moved
("cuda": device to device through CUDA IPC; "host": shared memory).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Any

import torch

from ..problems import Problem, ProblemError, find_problem
from ..verdict import Comparison, GuardFinding, Timing, TrialResult, Verdict
from . import backends as backends_mod
from . import exchange, sandbox, static_guards, tensorio, tolerance, trials
from .devicelock import DeviceLock, default_path
from .oprecord import HEAVY_FAMILIES, OpProfile
from .options import EvalOptions
from .prepared import PreparedProblem, ReferenceCache, default_budget, problem_key
from .reference import ExpectedOutput, TrialReference
from .session import (
    Reaper,
    SessionConfig,
    WorkerFault,
    WorkerSession,
    sweep_stale_workdirs,
)
from .timing import DeviceTiming, measure, timing_for

# Share of the device's memory a candidate can count on: two judges hold an eighth each at most,
# spare processes a context each, and two candidates share what is left. A candidate that ran out
# of device memory below this share ran out because of others (see `oom_blame`).
CANDIDATE_SHARE = 0.375
# Spare candidate processes per judge on a GPU. Forked from the fork server (zygote.py), a spare
# is ready once its device is (a context, a few hundred milliseconds to a second or two), not
# after seconds of importing torch; each start-up takes a CPU, and all of them at once slowed
# every one (7 per judge at 2 judges on 16 CPUs: 10-14 s each, worse than 3 spares).
_MIN_GPU_SPARES = 2
_MAX_GPU_SPARES = 3


def oom_blame(own: int, requested: int, total: int, judge_held: int, judge_budget: int) -> str:
    """Who a device out-of-memory in a candidate's process is charged to: "judge" (the judge
    held more than its budget), "others" (the candidate held, with what it asked for, less than
    its share of the device: other processes filled it) or "candidate"."""
    if judge_held > judge_budget:
        return "judge"
    if total > 0 and own + requested < CANDIDATE_SHARE * total:
        return "others"
    return "candidate"


def _requested_bytes(message: str) -> int:
    """The allocation PyTorch's out-of-memory message says failed ("Tried to allocate 1.00 GiB")."""
    import re

    found = re.search(r"Tried to allocate ([0-9.]+) (B|KiB|MiB|GiB|TiB)", message)
    if not found:
        return 0
    scale = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[found.group(2)]
    return int(float(found.group(1)) * scale)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _default_spare_limit(judges: int | None) -> int:
    """Spare processes per judge on a GPU, for `judges` judges on the machine (None: unknown, the
    minimum): each holds a device context (under 1 GiB) and once started sleeps, but they start
    at once, so the CPUs bound them."""
    if not judges:
        return _MIN_GPU_SPARES
    cpus = os.cpu_count() or 1
    return max(_MIN_GPU_SPARES, min(_MAX_GPU_SPARES, cpus // judges - 1))


class _Stop(Exception):
    """Ends the evaluation early; the verdict already says why."""


class Judge:
    """Evaluates candidates one after another. Reuse one Judge for many candidates (a run): it
    keeps each problem's references (prepared.py), cached baselines, and with `prestart`
    candidate processes started ahead of need, so that the next candidate's interpreter, torch
    and device are ready while the current one is judged.

    `prestart=True` keeps one spare process on the sim; on a GPU, where a process takes a second
    or so to make its device ready and a candidate under one, as many as cover a start-up at the
    pace candidates are judged (measured as the judge goes), between 2 and `spare_limit`, and
    never more than the candidates still to come (`evaluate(upcoming=...)`). An int keeps that
    many. Processes are forked from the judge's fork server (zygote.py) unless
    `EvalOptions.fork_server` is False.

    The judge's own device memory (PyTorch's allocator: references and their temporaries; CUDA
    exchange regions) is held to `memory_budget`: after each candidate the least recently used
    references go, and the allocator returns its cache to the device."""

    def __init__(
        self,
        options: EvalOptions | None = None,
        prestart: bool | int = False,
        cache_bytes: int | None = None,
        spare_limit: int | None = None,
    ):
        """`cache_bytes`: the judge's memory budget where the references live (default: an
        eighth of the GPU's memory, or of the machine's). `spare_limit`: the most processes kept
        started on a GPU (default 2; `_default_spare_limit` sizes it from the CPUs per judge)."""
        self.options = options or EvalOptions()
        self.prestart = prestart
        self.cache_bytes = cache_bytes
        self.spare_limit = spare_limit or _MIN_GPU_SPARES
        self._spares: list[WorkerSession] = []
        self._timings: dict[str, DeviceTiming] = {}
        self._locks: dict[str, DeviceLock] = {}
        self.references = ReferenceCache()
        self._baselines: dict[str, dict[str, Timing]] = {}
        self._reaper = Reaper()
        self.cuda_exchange_failure: str | None = None  # why CUDA IPC is not used, once it failed
        self._startups: list[float] = []  # seconds from start to ready, of the latest processes
        self._paces: list[float] = []  # seconds per candidate, less the wait for its process
        self._upcoming: int | None = None  # candidates still to come after the current one
        sandbox.protect_this_process()
        sweep_stale_workdirs()

    def device_lock(self, backend: backends_mod.Backend) -> DeviceLock:
        """The machine-wide lock on `backend`'s device (devicelock.py): taken where timings are
        performance, or wherever the options name a lock file."""
        path = self.options.timing_lock
        if path is None and backend.is_performance:
            path = default_path(backend.name)
        if backend.name not in self._locks or self._locks[backend.name].path != path:
            self._locks[backend.name] = DeviceLock(path)
        return self._locks[backend.name]

    def timing(self, backend: str) -> DeviceTiming:
        if backend not in self._timings:
            self._timings[backend] = timing_for(backend)
        return self._timings[backend]

    def _session_config(self) -> SessionConfig:
        limit = self.options.memory_limit_mb
        return SessionConfig(
            memory_limit_bytes=limit * 2**20 if limit else None,
            startup_timeout=self.options.startup_timeout,
            threads=self.options.threads,
            fork_server=self.options.fork_server,
        )

    # -- processes started ahead of need ------------------------------------------------------

    def _spare_depth(self, backend: backends_mod.Backend) -> int:
        if self.prestart is True:
            depth = self._planned_depth() if backend.is_performance else 1
        else:
            depth = max(0, int(self.prestart or 0))
        if self._upcoming is not None:
            depth = min(depth, self._upcoming)
        return depth

    def _planned_depth(self) -> int:
        """Enough spares that one started now is ready when the last of them is taken."""
        limit = max(_MIN_GPU_SPARES, self.spare_limit)
        if not self._startups or not self._paces:
            return limit  # on a GPU a start-up is seconds, a candidate usually less than one
        startup = sorted(self._startups)[len(self._startups) // 2]
        pace = max(sorted(self._paces)[len(self._paces) // 2], 0.05)
        return max(_MIN_GPU_SPARES, min(limit, math.ceil(startup / pace) + 1))

    def _observe(self, session: WorkerSession | None, seconds: float, waited: float) -> None:
        if session is not None and "ready" in session.startup:
            self._startups = [*self._startups[-7:], session.startup["ready"]]
        self._paces = [*self._paces[-7:], max(0.0, seconds - waited)]

    def adopt(self, sessions: list[WorkerSession]) -> None:
        """Take over processes started before this judge existed (an executor starts them while
        the judge's own process is still importing torch)."""
        self._spares.extend(sessions)

    def _take_session(self, backend: backends_mod.Backend) -> WorkerSession:
        config = self._session_config()
        session = None
        while self._spares and session is None:
            spare = self._spares.pop(0)  # the oldest: the likeliest to be ready
            usable = spare.config == config and spare.backend in (backend.name, "auto", None)
            if usable and spare.proc is not None and spare.proc.poll() is None:
                session = spare
            else:
                self._reaper.discard(spare)
        if session is None:
            session = WorkerSession(config, backend.name).start()
        depth = self._spare_depth(backend)
        while len(self._spares) < depth:
            self._spares.append(WorkerSession(config, backend.name).start())
        while len(self._spares) > depth:  # fewer candidates to come than processes started
            self._reaper.discard(self._spares.pop())
        return session

    def retire(self, session: WorkerSession) -> None:
        """End a finished candidate's process off the judge's path."""
        self._reaper.discard(session)

    # -- device memory --------------------------------------------------------------------------

    def memory_budget(self, device: str) -> int:
        """Bytes of `device` the judge's own holdings may take between candidates."""
        return self.cache_bytes if self.cache_bytes is not None else default_budget(device)

    def device_bytes(self, device: str, current: WorkerSession | None = None) -> int:
        """What the judge holds on `device` now: its allocator's reservation (references, cached
        blocks) and its CUDA exchange regions, those of finished sessions not yet freed included."""
        if device != "cuda":
            return self.references.nbytes
        held = torch.cuda.memory_reserved() + self._reaper.device_bytes
        return held + (current.device_bytes if current is not None else 0)

    def release_memory(self, device: str, everything: bool = False) -> None:
        """Back to the budget: the least recently used references go (all of them with
        `everything`), and PyTorch's cached blocks return to the device for the candidates."""
        budget = 0 if everything else self.memory_budget(device)
        if device == "cuda":
            budget = max(0, budget - self._reaper.device_bytes)
        self.references.trim(budget)
        if device == "cuda" and torch.cuda.is_initialized():
            if everything:
                import gc

                gc.collect()
            torch.cuda.empty_cache()

    def close(self) -> None:
        for spare in self._spares:
            self._reaper.discard(spare)
        self._spares.clear()
        self._reaper.join()
        self.references.clear()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def evaluate(
        self,
        problem: Problem | str | os.PathLike,
        source: str,
        backend: str | None = None,
        *,
        sizes: str | dict | None = None,
        overrides: dict | None = None,
        dtype: str | None = None,
        baselines: dict[str, Timing] | None = None,
        upcoming: int | None = None,
    ) -> Verdict:
        """Judge `source` (a module defining ModelNew) against `problem`.

        Raises ProblemError when the problem itself cannot run, and BackendError when the backend
        does not exist here; everything the candidate does wrong is a verdict.
        `baselines` are cached eager/compile timings for this problem, sizes, dtype and device
        (keys "eager", "compile"); new ones measured here come back in `verdict.baselines`, and the
        judge keeps them for the problem's next candidates. `upcoming`: how many candidates this
        judge will likely get after this one (None: unknown); no more processes are pre-started.

        A candidate whose process runs out of device memory that other processes took (the
        judge over its budget, or the candidate holding less than its share of the device) is not
        charged with it: the judge frees what it holds and judges it once more; a second time,
        the verdict is the harness's (`error_kind` "harness"), never the candidate's.
        """
        if not isinstance(problem, Problem):
            problem = find_problem(problem)
        self._upcoming = upcoming
        resolved = backends_mod.resolve(backend)
        args = (self, problem, source, resolved, sizes, overrides, dtype, baselines)
        started = time.monotonic()
        run = _Evaluation(*args)
        verdict = run.execute()
        if run.not_the_candidates is not None:
            first_try = run.not_the_candidates
            self.release_memory(resolved.exact_device, everything=True)
            run = _Evaluation(*args)
            verdict = run.execute()
            verdict.options["retried"] = f"judged again after the first try failed: {first_try}"
        self._observe(run.first_session, time.monotonic() - started, verdict.durations.get("worker_wait", 0.0))
        return verdict

    def _baseline_key(self, problem: Problem, instance, backend: backends_mod.Backend) -> str:
        return json.dumps(
            [problem.id, problem.path.as_posix() if hasattr(problem.path, "as_posix") else str(problem.path),
             {k: _jsonable(v) for k, v in instance.sizes.items()}, instance.dtype, backend.device_name,
             torch.__version__],
            sort_keys=True,
        )  # fmt: skip


class _Evaluation:
    def __init__(self, judge, problem, source, backend, sizes, overrides, dtype, baselines):
        self.judge: Judge = judge
        self.options: EvalOptions = judge.options
        self.problem: Problem = problem
        self.source = source
        self.backend: backends_mod.Backend = backend
        self.sizes = backend.default_sizes if sizes is None else sizes
        self.overrides = overrides
        self.dtype = dtype
        self.given_baselines = baselines or {}
        self.session: WorkerSession | None = None
        self.first_session: WorkerSession | None = None  # for the judge's start-up statistics
        self.region: Any = None  # the exchange region attached to the session (judge side)
        # why the device ran out of memory where the candidate is not to blame (None: it did not)
        self.not_the_candidates: str | None = None
        self.timing = judge.timing(backend.name)
        # shared around this judge's and its candidate's work on the device, exclusive around timing
        self.device = judge.device_lock(backend)
        self.rng = trials.seed_source(self.options.seed)  # this candidate's own: timing refills
        self.verdict: Verdict | None = None
        self.prepared: PreparedProblem | None = None
        self.instances: dict[str, Any] = {}
        self.size_requests: dict[str, tuple[Any, Any]] = {}  # label -> (sizes, overrides) as asked
        # the latest main-size trial: the timed runs restore its inputs and check its output
        self.timed_trial: tuple[str, TrialReference] | None = None
        self.stage_started = time.monotonic()

    # -- bookkeeping ------------------------------------------------------------------------

    def _enter(self, stage: str) -> None:
        now = time.monotonic()
        v = self.verdict
        v.durations[v.stage] = v.durations.get(v.stage, 0.0) + now - self.stage_started
        self.stage_started = now
        v.stage = stage

    @contextlib.contextmanager
    def _part(self, name: str):
        """Add the time spent inside to `verdict.durations[name]`."""
        started = time.monotonic()
        try:
            yield
        finally:
            durations = self.verdict.durations
            durations[name] = durations.get(name, 0.0) + time.monotonic() - started

    def _fail(self, kind: str, reason: str) -> _Stop:
        self.verdict.passed = False
        self.verdict.error_kind = kind
        self.verdict.reason = reason
        return _Stop()

    def _guard(self, guard: str, severity: str, message: str, **details: Any) -> None:
        self.verdict.guards.append(GuardFinding(guard, severity, message, details))

    def _fail_on_guards(self) -> None:
        failed = self.verdict.failed_guards
        if failed:
            raise self._fail("guard", f"{failed[0].guard}: {failed[0].message}")

    # -- the run ----------------------------------------------------------------------------

    def execute(self) -> Verdict:
        main = self.problem.instantiate(self.sizes, overrides=self.overrides, dtype=self.dtype)
        self.instances["main"] = main
        self.size_requests["main"] = (self.sizes, self.overrides)
        has_heldout = "heldout" in self.problem.presets and main.preset != "heldout"
        if self.options.heldout and has_heldout:
            self.instances["heldout"] = self.problem.instantiate("heldout", dtype=main.dtype)
            self.size_requests["heldout"] = ("heldout", None)
        self.verdict = Verdict(
            problem_id=self.problem.id,
            backend=self.backend.name,
            device=self.backend.device_name,
            sizes=main.preset or "custom",
            dtype=main.dtype,
            sizes_detail={k: _jsonable(v) for k, v in main.sizes.items()},
            options=self.options.to_dict(),
        )
        baseline_key = self.judge._baseline_key(self.problem, main, self.backend)
        self.cached_baselines = {**self.judge._baselines.get(baseline_key, {}), **self.given_baselines}
        try:
            self._static(main, has_heldout)
            with _reference_numerics(main.torch_dtype):  # PyTorch's answers in true float32
                self._prepare()
                self._open_session()
                self._load()
                self._trials()
                if self.options.timing:
                    self._time()
            self._enter("complete")
            self.verdict.passed = True
            self.verdict.reason = "passed every trial and guard"
        except _Stop:
            pass
        except WorkerFault as fault:
            self._fault(fault)
        finally:
            self._finish()
        if self.verdict.baselines:
            self.judge._baselines[baseline_key] = dict(self.verdict.baselines)
        return self.verdict

    def _static(self, main, has_heldout: bool) -> None:
        try:
            findings = static_guards.scan(
                self.source,
                dtype=main.dtype,
                size_values={**self.problem.constants(), **main.sizes},
                has_heldout=has_heldout and self.options.heldout,
                filename="candidate.py",
            )
        except SyntaxError as exc:
            raise self._fail("syntax", f"syntax error on line {exc.lineno}: {exc.msg}") from None
        self.verdict.guards.extend(findings)
        self._fail_on_guards()

    def _prepare(self) -> None:
        """The problem's seeds, plan and references: from the judge's cache, or made now."""
        self._enter("prepare")

        def make() -> PreparedProblem:
            return PreparedProblem(self.instances, self.backend, self.options, self.timing.synchronize)

        with self._part("reference"), self.device.shared():
            try:
                self._prepare_references(make)
            except torch.OutOfMemoryError:
                # the device is full of what the judge kept: drop it all and prepare once more
                self.judge.release_memory(self.backend.exact_device, everything=True)
                self._prepare_references(make)

    def _prepare_references(self, make) -> None:
        if self.options.reuse_references:
            key = problem_key(self.problem, self.sizes, self.overrides, self.dtype, self.backend.name, self.options)
            self.prepared = self.judge.references.get(key, make)
        else:
            self.prepared = make()
        # what the exchange region must hold: the first main trial's and the held-out one's
        self._sized = [self.prepared.trial(s) for s in self.prepared.plan if s.name in ("t1", "heldout")]

    # -- the candidate's process and the exchange region --------------------------------------

    def _open_session(self) -> None:
        self._enter("import")
        self.session = self.first_session = self.judge._take_session(self.backend)
        (self.session.workdir / "candidate.py").write_text(self.source, encoding="utf-8")
        started = time.monotonic()
        self.session.wait_ready()
        self.verdict.durations["worker_wait"] = time.monotonic() - started
        # how long its process took to start (hidden or not): forked (or interpreter up and torch
        # imported), then its device ready
        for mark, seconds in self.session.startup.items():
            self.verdict.durations[f"worker_startup_{mark}"] = seconds
        size = max([_trial_layout(ref)[0].size for ref in self._sized] + [exchange.ALIGN])
        with self.device.shared():
            self._attach(size)

    def _attach(self, size: int) -> None:
        """Attach a region of at least `size` bytes: device memory through CUDA IPC where the
        references live on a CUDA device and IPC works, else the session's host region. A CUDA
        region that fails its probe (or kills the process opening it: no candidate code has run
        yet) turns CUDA IPC off for this judge; a device with no room for one right now only
        sends this candidate through the host region (its verdict's options say why)."""
        if self.backend.exact_device == "cuda" and self.judge.cuda_exchange_failure is None:
            region = None
            try:
                region = self._cuda_region(size)
            except Exception as exc:
                self.judge.cuda_exchange_failure = f"{type(exc).__name__}: {exc}"
            if region is not None:
                self.session.regions.append(region)  # freed with the session, after its process
                try:
                    problem = self._probe(region)
                except WorkerFault as fault:
                    problem = f"the candidate's process died opening it: {fault.message}"
                    self.judge.retire(self.session)
                    self.session = self.judge._take_session(self.backend)
                    (self.session.workdir / "candidate.py").write_text(self.source, encoding="utf-8")
                if problem is None:
                    self.region = region
                    self.verdict.options["exchange"] = region.kind
                    return
                if "out of memory" in problem.lower():  # a full device passes: try CUDA next time
                    self.verdict.options["exchange_note"] = f"no room on the device for the exchange: {problem}"
                else:
                    self.judge.cuda_exchange_failure = problem
        region = self.session.host_region
        region.ensure(size)
        problem = self._probe(region)
        if problem is not None:
            raise self._fail("harness", f"the exchange region does not work: {problem}")
        self.region = region
        self.verdict.options["exchange"] = region.kind

    def _cuda_region(self, size: int):
        """A CUDA region, or None when the device has no room for one now (then this candidate
        uses the host region, and the next tries CUDA again). Other failures raise: CUDA IPC
        does not work here."""
        from .cuda_ipc import IpcError

        for attempt in range(2):
            try:
                return exchange.CudaRegion(size, torch.cuda.current_device())
            except IpcError as exc:
                if not exc.out_of_memory:
                    raise
                if attempt == 0:
                    self.judge.release_memory("cuda")
                else:
                    self.verdict.options["exchange_note"] = f"no room on the device for the exchange: {exc}"
        return None

    def _probe(self, region) -> str | None:
        """A random pattern through `region` and its complement back; None when both arrive."""
        pattern = exchange.probe_pattern()
        region.write(exchange.Slot(0, len(pattern)), torch.frombuffer(bytearray(pattern), dtype=torch.uint8))
        region.flush()
        reply = self.session.request(
            {"op": "attach", "backend": self.backend.name, "region": region.describe(), "probe": pattern.hex()},
            self.options.startup_timeout,
            "start-up",
        )
        if not reply.get("ok"):
            return f"{reply.get('error_type', 'Error')}: {reply.get('message', '')}"
        if not reply.get("probe_matched"):
            return "the candidate's process read other bytes than the judge wrote"
        back = region.read(exchange.Slot(0, len(pattern)), torch.uint8, [len(pattern)], "cpu")
        if bytes(back.numpy().tobytes()) != exchange.complement(pattern):
            return "the judge read other bytes than the candidate's process wrote"
        return None

    def _ensure_region(self, size: int) -> None:
        if size <= self.region.size:
            return
        if self.region.kind == "host":
            self.region.ensure(size)
            problem = self._probe(self.region)
            if problem is not None:
                raise self._fail("harness", f"the exchange region does not work: {problem}")
        else:
            self._attach(size)

    def _place_inputs(self, inputs: list[Any], slots: list[exchange.Slot | None]) -> list[dict]:
        """Write the tensor inputs into their slots; their records (other inputs travel as values)."""
        records = []
        with self._part("exchange"):
            for x, slot in zip(inputs, slots):
                if isinstance(x, torch.Tensor):
                    self.region.write(slot, x)
                    records.append(tensorio.record(x, offset=slot.offset, nbytes=slot.nbytes))
                else:
                    records.append(tensorio.describe(x))
            self.region.flush()
        return records

    def _load(self) -> None:
        reply = self._ask(
            {
                "op": "load",
                "problem": str(self.problem.path),
                "backend": self.backend.name,
                "device": self.backend.torch_device,
                "source": str(self.session.workdir / "candidate.py"),
            },
            self.options.import_timeout,
            "import",
        )
        self._runtime_guards(reply, "import")
        self.verdict.durations["compile"] = reply.get("ms", 0.0) / 1e3
        self._fail_on_guards()

    def _ask(self, message: dict, timeout: float, stage: str) -> dict:
        reply = self.session.request(message, timeout, stage)
        if not reply.get("ok"):
            kind = reply.get("kind") or stage
            if kind == "problem":
                raise ProblemError(
                    self.problem.path, f"fails in the candidate's process: {reply.get('message')}"
                )
            text = f"{reply.get('error_type', 'Error')}: {reply.get('message', '')}".strip()
            if kind == "memory" and isinstance(reply.get("device_memory"), dict):
                kind, text = self._device_oom(reply["device_memory"], text)
            self.verdict.log_tail = (reply.get("traceback") or "")[-4000:]
            if reply.get("compile_log"):
                self.verdict.compile_log = reply["compile_log"]
            if reply.get("tampering"):
                self._tampering(reply["tampering"], stage)
            what = {
                "compile": "a kernel failed to compile",
                "import": "importing the solution raised",
                "init": "building ModelNew raised",
                "runtime": "forward raised",
                "memory": "ran out of memory",
                "harness": "the harness failed",
            }.get(kind, kind)
            raise self._fail(
                kind if kind in ("compile", "import", "init", "runtime", "memory", "harness") else "runtime",
                f"{what}: {text}",
            )
        return reply

    def _device_oom(self, memory: dict, text: str) -> tuple[str, str]:
        """Whose out-of-memory it was: ("memory", ...) when the candidate's own, ("harness", ...)
        when the device was full of other processes' memory (see `Judge.evaluate`)."""
        device = self.backend.exact_device
        total, own = int(memory.get("total") or 0), int(memory.get("own") or 0)
        held, budget = self.judge.device_bytes(device, self.session), self.judge.memory_budget(device)
        blame = oom_blame(own, _requested_bytes(text), total, held, budget)
        if blame == "candidate":
            return "memory", f"{text} (its process held {_gib(own)} of the device's {_gib(total)})"
        why = (
            f"the device ran out of memory while the candidate's process held {_gib(own)} of "
            f"{_gib(total)} and the judge {_gib(held)} (budget {_gib(budget)}); "
            + ("the judge was over its budget" if blame == "judge" else "other processes held the rest")
        )
        self.not_the_candidates = why
        return "harness", f"not the candidate's: {why}. {text}"

    # -- trials -----------------------------------------------------------------------------

    def _init_model(self, label: str) -> None:
        with self.device.shared():
            self._init_model_locked(label)

    def _init_model_locked(self, label: str) -> None:
        instance = self.instances[label]
        with self._part("reference"):
            self.prepared.reference(label)
        sizes, overrides = self.size_requests[label]
        reply = self._ask(
            {
                "op": "init",
                "label": label,
                "sizes": sizes,
                "overrides": overrides,
                "dtype": instance.dtype,
                "seed": self.prepared.weight_seeds[label],
            },
            self.options.init_timeout,
            "init",
        )
        self._runtime_guards(reply, "init")
        self._fail_on_guards()

    def _trials(self) -> None:
        self._enter("init")
        self._init_model("main")
        self._enter("correctness")
        for spec in self.prepared.plan:
            if spec.label == "heldout":
                self._enter("heldout")
                self._init_model("heldout")
            self._trial(spec)

    def _trial(self, spec: trials.TrialSpec) -> None:
        with self.device.shared():
            self._trial_locked(spec)

    def _trial_locked(self, spec: trials.TrialSpec) -> None:
        with self._part("reference"):
            ref = self.prepared.trial(spec)
        layout, input_slots, output_slots, after_slots = _trial_layout(ref)
        self._ensure_region(layout.size)
        records = self._place_inputs(ref.inputs, input_slots)
        result = TrialResult(spec.name, spec.label, spec.distribution, spec.refill, passed=False)
        self.verdict.trials.append(result)
        try:
            reply = self._ask(
                {
                    "op": "trial",
                    "name": spec.name,
                    "label": spec.label,
                    "inputs": records,
                    "refill": spec.refill,
                    "outbox": {
                        "outputs": [s.to_json() for s in output_slots],
                        "inputs": [s.to_json() if s is not None else [0, 0] for s in after_slots],
                    },
                },
                self.options.trial_timeout,
                "heldout" if spec.label == "heldout" else "correctness",
            )
        except _Stop:
            if spec.label == "heldout":
                self.verdict.reason = f"at held-out sizes (shapes hard-coded?): {self.verdict.reason}"
            result.error = self.verdict.reason
            raise
        result.elapsed_ms = _number(reply.get("elapsed_ms"))
        result.launches = reply.get("launches") if isinstance(reply.get("launches"), int) else None
        self._runtime_guards(reply, spec.name)
        self._op_guards(reply, result)
        self._fail_on_guards()
        self._inputs_unchanged(spec.name, ref.inputs, reply.get("inputs_after"), after_slots)
        result.comparisons = self._compare(ref, reply, output_slots)
        result.passed = all(c.passed for c in result.comparisons)
        if spec.label == "main":
            self.timed_trial = (spec.name, ref)
        if self.prepared.nbytes > self.judge.memory_budget(self.backend.exact_device):
            self.prepared.forget(spec.name)  # kept for this candidate only (timed_trial, ref)
        self._record_errors(result.comparisons)
        self._fail_on_guards()
        if not result.passed:
            bad = next(c for c in result.comparisons if not c.passed)
            where = "at held-out sizes" if spec.label == "heldout" else f"on {spec.distribution} inputs"
            hint = " (shapes hard-coded?)" if spec.label == "heldout" else ""
            result.error = bad.describe()
            raise self._fail(
                "mismatch" if not bad.problem else "output",
                f"trial {spec.name} {where}{hint}: {bad.describe()}",
            )

    def _compare(self, ref: TrialReference, reply: dict, slots: list[exchange.Slot]) -> list[Comparison]:
        records = reply.get("outputs")
        if not isinstance(records, list):
            raise self._fail("output", "the worker returned no outputs")
        want = len(ref.outputs)
        if ref.structure in ("tuple", "list") and reply.get("structure") not in ("tuple", "list"):
            raise self._fail(
                "output",
                f"forward returned a {reply.get('structure')}; the reference returns a {ref.structure} of {want}",
            )
        if ref.structure == "tensor" and reply.get("structure") != "tensor":
            raise self._fail(
                "output", f"forward returned a {reply.get('structure')}; the reference returns one tensor"
            )
        if len(records) != want:
            raise self._fail(
                "output", f"forward returned {len(records)} outputs; the reference returns {want}"
            )
        aliases = reply.get("aliases") or []
        if aliases:
            a = aliases[0]
            raise self._fail(
                "output",
                f"output {a.get('output')} shares memory with input {a.get('input')}: outputs must be new tensors",
            )
        return [
            self._compare_one(i, record, expected, slot)
            for i, (record, expected, slot) in enumerate(zip(records, ref.outputs, slots))
        ]

    def _compare_one(self, i: int, record: Any, expected: ExpectedOutput, slot: exchange.Slot) -> Comparison:
        if not expected.is_tensor:
            got = record.get("value") if isinstance(record, dict) else None
            same = got == expected.value or (
                isinstance(got, float)
                and isinstance(expected.value, float)
                and math.isclose(got, expected.value, rel_tol=1e-6)
            )
            return Comparison(
                output=i,
                passed=bool(same),
                shape=[],
                numel=1,
                mismatched=0 if same else 1,
                exact=True,
                problem=None if same else f"returned {got!r}, expected {expected.value!r}",
            )
        shape, numel = list(expected.shape), math.prod(expected.shape)

        def problem(text: str) -> Comparison:
            return Comparison(output=i, passed=False, shape=shape, numel=numel, problem=text)

        if not isinstance(record, dict) or record.get("kind") != "tensor":
            kind = record.get("type") or record.get("value") if isinstance(record, dict) else record
            return problem(f"is {kind!r}, not a tensor")
        if record.get("shape") != shape:
            return problem(f"has shape {tuple(record.get('shape') or ())}, expected {tuple(shape)}")
        want_dtype = tensorio.dtype_name(expected.dtype)
        if record.get("dtype") != want_dtype:
            return problem(f"has dtype {record.get('dtype')}, expected {want_dtype}")
        want_device = torch.device(self.backend.torch_device).type
        if record.get("device") != want_device:
            return problem(f"is on device {record.get('device')}, expected {want_device}")
        if record.get("stored") is not True:
            return problem("could not be read: its process did not hand its bytes over")
        try:
            with self._part("exchange"):
                got = self.region.read(slot, expected.dtype, shape, expected.tensor.device)
        except tensorio.TransferError as exc:
            return problem(f"could not be read: {exc}")
        with self._part("compare"):
            return tolerance.compare(
                i,
                got,
                expected.tensor,
                None,
                expected.dtype,
                reference=expected.reference,
                calibration=expected.calibration,
            )

    def _record_errors(self, comparisons: list[Comparison]) -> None:
        v = self.verdict
        for c in comparisons:
            if c.problem:
                continue
            v.max_abs_error = max(v.max_abs_error or 0.0, c.max_abs_error)
            v.max_rel_error = max(v.max_rel_error or 0.0, c.max_rel_error)
            v.margin = max(v.margin or 0.0, c.margin)

    def _inputs_unchanged(
        self, name: str, inputs: list[Any], after: Any, slots: list[exchange.Slot | None]
    ) -> None:
        if not isinstance(after, list) or len(after) != len(inputs):
            raise self._fail("harness", "the worker did not report its inputs after forward")
        for i, (before, record) in enumerate(zip(inputs, after)):
            if not isinstance(before, torch.Tensor):
                continue
            try:
                dtype, shape = tensorio.check_record(record)
            except tensorio.TransferError as exc:
                raise self._fail("harness", f"input {i} after forward could not be read: {exc}") from None
            same = dtype == before.dtype and shape == list(before.shape)
            if same and before.numel():
                if record.get("stored") is not True:
                    raise self._fail("harness", f"input {i} after forward was not handed back")
                try:
                    with self._part("exchange"):
                        now = self.region.read(slots[i], dtype, shape, before.device)
                except tensorio.TransferError as exc:
                    raise self._fail("harness", f"input {i} after forward could not be read: {exc}") from None
                with self._part("compare"):
                    same = torch.equal(exchange.tensor_bytes(now), exchange.tensor_bytes(before))
            if not same:
                self._guard(
                    "mutated-input", "fail", f"forward changed input {i} in place (trial {name})", input=i
                )
        self._fail_on_guards()

    # -- runtime guards ---------------------------------------------------------------------

    def _tampering(self, changes: list, where: str) -> None:
        for change in [str(c) for c in changes[:10]]:
            if "changed from" in change and any(k in change for k in ("tf32", "precision", "default_dtype")):
                self._guard("precision", "fail", f"lower precision than asked: {change} ({where})")
            else:
                self._guard("monkey-patch", "fail", f"{change} ({where})")

    def _runtime_guards(self, reply: dict, where: str) -> None:
        if reply.get("tampering"):
            self._tampering(reply["tampering"], where)
        if reply.get("dispatch_mode_kept") is False:
            self._guard(
                "monkey-patch",
                "fail",
                f"the harness's op recorder was removed or covered during forward ({where})",
            )
        threads = list(reply.get("python_threads") or []) + list(reply.get("new_threads") or [])
        if threads:
            self._guard(
                "side-work",
                "fail",
                f"threads still running after forward returned ({where}): {', '.join(map(str, threads[:5]))}",
            )
        if reply.get("children"):
            self._guard(
                "side-work",
                "fail",
                f"processes still running after forward returned ({where}): pids {reply['children'][:5]}",
            )

    def _op_guards(self, reply: dict, result: TrialResult) -> None:
        ops = OpProfile.from_dict(reply.get("ops") or {})
        reference_compute = set(self.prepared.reference_ops.compute_ops())
        offending = {
            name: s
            for name, s in ops.compute_ops().items()
            if s.family in HEAVY_FAMILIES or name in reference_compute
        }
        elapsed = result.elapsed_ms or 0.0
        torch_ms = ops.compute_ms()
        share = None
        if result.launches == 0:
            share = 0.0
        elif self.backend.torch_device == "cpu" and elapsed > 0:
            # synchronous backend: what forward spent outside PyTorch's compute ops ran in kernels
            # (or in Python around them: an upper bound on the kernels' share)
            share = max(0.0, min(1.0, 1.0 - torch_ms / elapsed))
        self.verdict.ops = {
            "ops": ops.to_dict(),
            "torch_compute_ms": torch_ms,
            "custom_share": share,
            "share_method": "1 - host time of PyTorch compute ops / forward time"
            if share is not None
            else None,
            "reference_ops": sorted(reference_compute),
        }
        if offending:
            listing = ", ".join(
                f"aten::{n} x{s.count} ({s.family if s.family != 'elementwise' else 'an op of the reference'})"
                for n, s in sorted(offending.items())
            )
            if self.options.strict:
                self._guard(
                    "torch-ops",
                    "fail",
                    f"PyTorch ran the reference's work in trial {result.name}: {listing}",
                    ops=sorted(offending),
                )
            elif not any(g.guard == "torch-ops" for g in self.verdict.guards):  # once, not per trial
                share_text = (
                    f"; {100 * share:.0f}% of forward time in custom kernels" if share is not None else ""
                )
                self._guard(
                    "torch-ops",
                    "info",
                    f"partial: PyTorch ran {listing}{share_text}",
                    ops=sorted(offending),
                    custom_share=share,
                )
        launched = result.launches
        if self.options.require_kernel:
            if launched == 0:
                self._guard(
                    "no-kernel",
                    "fail",
                    f"forward launched no {self.backend.name} kernel in trial {result.name}: the work was done some other way",
                )
            elif launched is None and not any(g.guard == "no-kernel" for g in self.verdict.guards):
                self._guard(
                    "no-kernel",
                    "info",
                    "kernel launches could not be counted (metalrt has no launch counter here)",
                )

    # -- timing -----------------------------------------------------------------------------

    def _time(self) -> None:
        self._enter("timing")
        plan = self.options.timing_plan(self.backend.is_performance)
        name, ref = self.timed_trial
        label = "main"
        layout, input_slots, output_slots, _ = _trial_layout(ref)
        # exclusive: no other judge's references, trials or comparisons on the device meanwhile
        with self.device.exclusive():
            self._ensure_region(layout.size)
            records = self._place_inputs(ref.inputs, input_slots)
            started = time.perf_counter_ns()
            reply = self._ask(
                {
                    "op": "time",
                    "label": label,
                    "inputs": records,
                    "seed": self.rng.getrandbits(31),
                    "outbox": {"outputs": [s.to_json() for s in output_slots]},
                    **plan,
                },
                self.options.timing_timeout,
                "timing",
            )
            envelope_ms = (time.perf_counter_ns() - started) / 1e6
            baselines = (
                self._baselines(label, ref) if self.backend.is_performance and self.options.baselines else {}
            )
        self._runtime_guards(reply, "timing")
        self._fail_on_guards()
        timing = _timing_from(reply.get("timing"), "candidate")
        times = [float(t) for t in reply.get("times") or [] if isinstance(t, (int, float))]
        if timing is None or not times:
            raise self._fail("harness", "the worker returned no timing")
        timing.envelope_ms = envelope_ms
        self.verdict.timing = timing
        problem = envelope_problem(timing, times, envelope_ms)
        if problem:
            self._guard("timer", "fail", problem)
        with self.device.shared():
            comparisons = self._compare(ref, reply, output_slots)
        bad = next((c for c in comparisons if not c.passed), None)
        if bad is not None:
            self._guard(
                "timing-output",
                "fail",
                f"after the timed runs, the output on trial {name}'s inputs is wrong: {bad.describe()}",
            )
        self._fail_on_guards()
        if reply.get("launches") == 0 and self.options.require_kernel:
            self._guard("no-kernel", "fail", "the timed runs launched no kernel")
            self._fail_on_guards()
        self.verdict.baselines = baselines
        if timing.is_performance and timing.median_ms > 0:
            if "eager" in baselines:
                self.verdict.speedup = baselines["eager"].median_ms / timing.median_ms
            if "compile" in baselines:
                self.verdict.speedup_compile = baselines["compile"].median_ms / timing.median_ms
            self._speed_of_light(timing)

    def _baselines(self, label: str, ref: TrialReference) -> dict[str, Timing]:
        """Eager and torch.compile, timed here by the same loop as the candidate; cached (in the
        store across runs, in the judge across candidates), so usually nothing runs here."""
        found = dict(self.cached_baselines)
        kinds = ["eager"] + (["compile"] if self.options.compile_baseline else [])
        missing = [kind for kind in kinds if kind not in found]
        if not missing:
            return found
        reference = self.prepared.reference(label)
        # copies: the refills below rewrite them, and the trial's inputs are kept for later candidates
        inputs = [
            x.to(self.backend.torch_device, copy=True) if isinstance(x, torch.Tensor) else x for x in ref.inputs
        ]
        plan = self.options.timing_plan(True)
        refill = _refiller(inputs, self.instances[label])
        with _reference_numerics(self.instances[label].torch_dtype):
            for kind in missing:
                model = reference.native_model if kind == "eager" else torch.compile(reference.native_model)
                started = time.perf_counter_ns()
                try:
                    with torch.no_grad():
                        result, _ = measure(
                            self.timing,
                            lambda model=model: model(*inputs),
                            subject=kind,
                            refill=refill,
                            warmup=int(plan["warmup"]),
                            min_runs=int(plan["min_runs"]),
                            max_runs=int(plan["max_runs"]),
                            budget_ms=float(plan["budget_ms"]),
                            stable_within=float(plan["stable_within"]),
                        )
                except Exception as exc:  # torch.compile may not support a model: say so, go on
                    self._guard(
                        "baseline", "info", f"the {kind} baseline could not run: {type(exc).__name__}: {exc}"
                    )
                    continue
                result.envelope_ms = (time.perf_counter_ns() - started) / 1e6
                found[kind] = result
        return found

    def _speed_of_light(self, timing: Timing) -> None:
        finding = speed_of_light_finding(
            self.instances["main"], self.backend, timing.median_ms, self.options.speed_of_light_slack
        )
        if finding is not None:
            self.verdict.guards.append(finding)

    # -- endings ----------------------------------------------------------------------------

    def _fault(self, fault: WorkerFault) -> None:
        v = self.verdict
        kind = {"timeout": "timeout", "memory": "memory", "crash": "crash", "guard": "guard"}[fault.kind]
        if fault.kind == "guard":
            self._guard("harness-access", "fail", fault.message)
        v.passed = False
        v.error_kind = kind
        v.reason = fault.message
        for t in v.trials:
            if not t.passed and t.error is None:
                t.error = fault.message

    def _finish(self) -> None:
        v = self.verdict
        now = time.monotonic()
        v.durations[v.stage] = v.durations.get(v.stage, 0.0) + now - self.stage_started
        if self.session is not None:
            self.session.leave()
            tail = self.session.log_tail()
            if tail:
                v.log_tail = (tail if not v.log_tail else v.log_tail + "\n--- worker log ---\n" + tail)[
                    -6000:
                ]
            v.peak_memory_bytes = self.session.peak_memory or None
            self.judge.retire(self.session)  # its process ends, and its regions are freed, meanwhile
            self.session = self.region = None
        self.timed_trial = None
        self.prepared = None
        self.judge.release_memory(self.backend.exact_device)
        v.log_tail = sandbox.redact(v.log_tail) or ""
        v.compile_log = sandbox.redact(v.compile_log)
        if not v.passed and not v.reason:
            v.reason = "did not complete"


def _trial_layout(ref: TrialReference):
    """Slots for a trial's inputs, its outputs and its inputs after forward, in one region."""
    layout = exchange.Layout()

    def slots_for_inputs() -> list[exchange.Slot | None]:
        return [layout.take(exchange.nbytes_of(x)) if isinstance(x, torch.Tensor) else None for x in ref.inputs]

    inputs = slots_for_inputs()
    outputs = [layout.take(o.nbytes) for o in ref.outputs]
    after = slots_for_inputs()
    return layout, inputs, outputs, after



def _refiller(inputs: list[Any], instance):
    """The same per-run input refresh the worker uses, for the baselines."""
    import random

    pristine = [x.clone() if isinstance(x, torch.Tensor) else None for x in inputs]
    scalable = [
        i
        for i, x in enumerate(inputs)
        if isinstance(x, torch.Tensor) and x.is_floating_point() and instance.input_domain(i) != "fixed"
    ]
    rng = random.Random(0)

    def refill() -> None:
        for i in scalable:
            tensorio.write_into(inputs[i], pristine[i] * (1.0 - 1e-3 * (0.1 + rng.random())), quiet=True)

    return refill


@contextlib.contextmanager
def _reference_numerics(dtype: torch.dtype):
    """float32 references run in true float32 (no TF32), as the candidate is held to."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def envelope_problem(timing: Timing, times: list[float], envelope_ms: float) -> str | None:
    """Why the timings reported from inside the candidate's process cannot be true, or None.

    The judge's own clock ran around the whole timing request, so the timed runs together cannot
    have taken longer than it saw; and the summary must agree with the runs it summarises."""
    inside = sum(times)
    if inside > envelope_ms * 1.01 + 1.0:
        return (
            f"the timings reported from inside ({inside:.3f} ms over {len(times)} runs) exceed the judge's "
            f"wall clock around them ({envelope_ms:.3f} ms): the clock or the harness was tampered with"
        )
    ordered = sorted(times)
    if (
        timing.runs != len(times)
        or ordered[0] > timing.median_ms
        or timing.median_ms > ordered[-1]
        or abs(ordered[len(ordered) // 2] - timing.median_ms) > max(ordered[-1] - ordered[0], 1e-9)
    ):
        return "the timing summary does not match the runs it reports: the harness was tampered with"
    return None


def speed_of_light_finding(
    instance, backend: backends_mod.Backend, median_ms: float, slack: float
) -> GuardFinding | None:
    """A flag for a human when `median_ms` beats the roofline bound of the problem on the device."""
    bound = _roofline_ms(instance, backend)
    if bound is None or median_ms >= bound * slack:
        return None
    return GuardFinding(
        "speed-of-light",
        "flag",
        f"{median_ms:.4g} ms is faster than the hardware allows for this problem's memory traffic and "
        f"arithmetic ({bound:.4g} ms at {backend.peak_bandwidth_gbs:g} GB/s): a human should look",
        {"bound_ms": bound, "median_ms": median_ms},
    )


def _roofline_ms(instance, backend: backends_mod.Backend) -> float | None:
    """The least time any kernel could take here: compulsory bytes over peak bandwidth, and exact
    (matmul-class) FLOPs over peak compute where that is known. None when unknown."""
    if not backend.peak_bandwidth_gbs:
        return None
    try:
        from ..problems import roofline
    except ImportError:
        return None
    device = roofline.Device(
        backend.device_name,
        bandwidth=backend.peak_bandwidth_gbs * 1e9,
        fp32_flops=backend.peak_tflops * 1e12 if backend.peak_tflops else math.inf,
    )
    try:
        return roofline.estimate(instance).lower_bound_seconds(device) * 1e3
    except Exception:  # a reference that cannot be traced on fake tensors: no bound
        return None


def _timing_from(data: Any, subject: str) -> Timing | None:
    if not isinstance(data, dict):
        return None
    try:
        return Timing(
            subject=subject,
            method=str(data["method"]),
            is_performance=bool(data["is_performance"]),
            median_ms=float(data["median_ms"]),
            min_ms=float(data["min_ms"]),
            max_ms=float(data["max_ms"]),
            iqr_ms=float(data["iqr_ms"]),
            runs=int(data["runs"]),
            warmup=int(data["warmup"]),
            profile=list(data.get("profile") or [])[:256],
        )
    except (KeyError, TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def evaluate(
    problem: Problem | str | os.PathLike,
    solution_source: str,
    backend: str | None = None,
    *,
    sizes: str | dict | None = None,
    overrides: dict | None = None,
    dtype: str | None = None,
    **options: Any,
) -> Verdict:
    """Judge one candidate. See `Judge.evaluate`; `options` are EvalOptions fields."""
    with Judge(EvalOptions.from_kwargs(**options)) as judge:
        return judge.evaluate(
            problem, solution_source, backend, sizes=sizes, overrides=overrides, dtype=dtype
        )
