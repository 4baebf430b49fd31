"""The judge: one candidate, from source to verdict.

    static guards on the source
    -> reference models in this process (float64 on the CPU, native on the device)
    -> a worker process: import the candidate, build ModelNew from the reference's seed
    -> trials: inputs written to files, outputs read back and compared here, runtime guards
    -> the held-out trial, timing with the wall-clock envelope, baselines, speed of light
    -> Verdict

The judge never imports the candidate. It stops at the first failure: the verdict then says
where (`stage`), why (`reason`, `error_kind`), and carries the evidence (mismatch report, guard
findings, compiler log, the tail of the worker's log).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import tempfile
import time
from typing import Any

import torch

from ..problems import Problem, ProblemError, find_problem
from ..verdict import Comparison, GuardFinding, Timing, TrialResult, Verdict
from . import backends as backends_mod
from . import sandbox, static_guards, tensorio, tolerance, trials
from .oprecord import HEAVY_FAMILIES, OpProfile
from .options import EvalOptions
from .reference import Reference, ReferenceOutputs
from .session import SessionConfig, WorkerFault, WorkerSession, sweep_stale_workdirs
from .timing import DeviceTiming, measure, timing_for


class _Stop(Exception):
    """Ends the evaluation early; the verdict already says why."""


class Judge:
    """Evaluates candidates one after another. Reuse one Judge for many candidates: with
    `prestart`, the next candidate's process is started (and has imported torch) while the
    current one is judged."""

    def __init__(self, options: EvalOptions | None = None, prestart: bool = False):
        self.options = options or EvalOptions()
        self.prestart = prestart
        self._spare: WorkerSession | None = None
        self._timings: dict[str, DeviceTiming] = {}
        sandbox.protect_this_process()
        sweep_stale_workdirs()

    def timing(self, backend: str) -> DeviceTiming:
        """The backend's timing, made once per judge (it may allocate a cache-flush buffer)."""
        if backend not in self._timings:
            self._timings[backend] = timing_for(backend)
        return self._timings[backend]

    def _session_config(self) -> SessionConfig:
        limit = self.options.memory_limit_mb
        return SessionConfig(
            memory_limit_bytes=limit * 2**20 if limit else None,
            startup_timeout=self.options.startup_timeout,
            threads=self.options.threads,
        )

    def _take_session(self) -> WorkerSession:
        session = self._spare or WorkerSession(self._session_config()).start()
        self._spare = WorkerSession(self._session_config()).start() if self.prestart else None
        return session

    def close(self) -> None:
        if self._spare is not None:
            self._spare.discard()
            self._spare = None

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
    ) -> Verdict:
        """Judge `source` (a module defining ModelNew) against `problem`.

        Raises ProblemError when the problem itself cannot run, and BackendError when the backend
        does not exist here; everything the candidate does wrong is a verdict.
        `baselines` are cached eager/compile timings for this problem, sizes, dtype and device
        (keys "eager", "compile"); new ones measured here come back in `verdict.baselines`.
        """
        if not isinstance(problem, Problem):
            problem = find_problem(problem)
        run = _Evaluation(
            self, problem, source, backends_mod.resolve(backend), sizes, overrides, dtype, baselines or {}
        )
        return run.execute()


class _Evaluation:
    def __init__(self, judge, problem, source, backend, sizes, overrides, dtype, baselines):
        self.judge = judge
        self.options: EvalOptions = judge.options
        self.problem: Problem = problem
        self.source = source
        self.backend: backends_mod.Backend = backend
        self.sizes = backend.default_sizes if sizes is None else sizes
        self.overrides = overrides
        self.dtype = dtype
        self.cached_baselines = baselines
        self.session: WorkerSession | None = None
        self.timing = judge.timing(backend.name)
        self.rng = trials.seed_source(self.options.seed)
        self.verdict: Verdict | None = None
        self.references: dict[str, Reference] = {}
        self.instances: dict[str, Any] = {}
        self.size_requests: dict[str, tuple[Any, Any]] = {}  # label -> (sizes, overrides) as asked
        self.last_inputs: dict[str, list[Any]] = {}  # label -> the latest trial's CPU inputs
        self.prepared_inputs: dict[str, list[Any]] = {}  # trial name -> inputs drawn ahead
        # the latest main-size trial: the timed runs restore its inputs and check its output
        self.timed_trial: tuple[str, list[dict], ReferenceOutputs] | None = None
        self.reference_ops = OpProfile()
        self.stage_started = time.monotonic()

    # -- bookkeeping ------------------------------------------------------------------------

    def _enter(self, stage: str) -> None:
        now = time.monotonic()
        v = self.verdict
        v.durations[v.stage] = v.durations.get(v.stage, 0.0) + now - self.stage_started
        self.stage_started = now
        v.stage = stage

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
        try:
            self._static(main, has_heldout)
            self._open_session()
            self._load()
            with _reference_numerics(main.torch_dtype):  # PyTorch's answers in true float32
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

    def _open_session(self) -> None:
        self.session = self.judge._take_session()
        (self.session.workdir / "candidate.py").write_text(self.source, encoding="utf-8")

    def _load(self) -> None:
        self._enter("import")
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
        self.verdict.durations["compile_ms"] = reply.get("ms", 0.0) / 1e3
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

    # -- trials -----------------------------------------------------------------------------

    def _init_model(self, label: str, seed: int) -> None:
        instance = self.instances[label]
        self.references[label] = Reference(instance, self.backend.torch_device, seed, self.timing.synchronize)
        sizes, overrides = self.size_requests[label]
        reply = self._ask(
            {
                "op": "init",
                "label": label,
                "sizes": sizes,
                "overrides": overrides,
                "dtype": instance.dtype,
                "seed": seed,
            },
            self.options.init_timeout,
            "init",
        )
        self._runtime_guards(reply, "init")
        self._fail_on_guards()

    def _trials(self) -> None:
        main = self.instances["main"]
        # t1's inputs are drawn first: they also tell which distributions apply, without
        # ProblemInstance.distributions()'s fake-tensor trace (which imports torch._dynamo)
        first_seed = self.rng.getrandbits(63)
        first_inputs = main.make_inputs(first_seed, "native", device="cpu")
        distributions = trials.applicable_distributions(main, first_inputs)
        plan = trials.plan(
            distributions, self.options.trials, "heldout" in self.instances, self.rng, first_seed=first_seed
        )
        self.prepared_inputs = {plan[0].name: first_inputs}
        self._enter("init")
        self._init_model("main", self.rng.getrandbits(63))
        self._enter("correctness")
        for spec in plan:
            if spec.label == "heldout":
                self._enter("heldout")
                self._init_model("heldout", self.rng.getrandbits(63))
            self._trial(spec)

    def _send_inputs(self, name: str, inputs: list[Any]) -> list[dict]:
        return [
            tensorio.save(self.session.workdir, f"{name}_sent{i}", x)
            if isinstance(x, torch.Tensor)
            else tensorio.describe(x)
            for i, x in enumerate(inputs)
        ]

    def _trial(self, spec: trials.TrialSpec) -> None:
        instance = self.instances[spec.label]
        inputs = self.prepared_inputs.pop(spec.name, None)
        if inputs is None:
            inputs = instance.make_inputs(spec.seed, spec.distribution, device="cpu")
        self.last_inputs[spec.label] = inputs
        profile = self.reference_ops if not self.reference_ops.ops else None
        expected = self.references[spec.label].run(inputs, profile=profile)
        records = self._send_inputs(spec.name, inputs)
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
        self._inputs_unchanged(spec.name, inputs, reply.get("inputs_after"))
        result.comparisons = self._compare(spec.name, expected, reply, instance)
        result.passed = all(c.passed for c in result.comparisons)
        self._keep_for_timing(spec, records, expected)
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

    def _keep_for_timing(
        self, spec: trials.TrialSpec, records: list[dict], expected: ReferenceOutputs
    ) -> None:
        """Delete what a trial wrote, except the latest main-size inputs (the timed runs reuse
        them): at a GPU's default sizes each trial's files are hundreds of megabytes."""
        keep = spec.label == "main"
        if keep and self.timed_trial is not None:
            self._remove_files(self.timed_trial[0])
        self._remove_files(spec.name, inputs_too=not keep)
        if keep:
            self.timed_trial = (spec.name, records, expected)

    def _remove_files(self, name: str, inputs_too: bool = True) -> None:
        for path in self.session.workdir.glob(f"{name}_*.bin"):
            if inputs_too or "_sent" not in path.name:
                path.unlink(missing_ok=True)

    def _compare(self, name: str, expected: ReferenceOutputs, reply: dict, instance) -> list[Comparison]:
        records = reply.get("outputs")
        if not isinstance(records, list):
            raise self._fail("output", "the worker returned no outputs")
        want = len(expected.native)
        if expected.structure in ("tuple", "list") and reply.get("structure") not in ("tuple", "list"):
            raise self._fail(
                "output",
                f"forward returned a {reply.get('structure')}; the reference returns a {expected.structure} of {want}",
            )
        if expected.structure == "tensor" and reply.get("structure") != "tensor":
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
        comparisons = []
        for i, (record, native) in enumerate(zip(records, expected.native)):
            exact = expected.exact[i] if expected.exact is not None else None
            nudged = expected.nudged[i] if expected.nudged is not None else None
            comparisons.append(self._compare_one(i, record, native, exact, nudged))
        return comparisons

    def _compare_one(self, i: int, record: dict, native: Any, exact: Any, nudged: Any = None) -> Comparison:
        if not isinstance(native, torch.Tensor):
            got = record.get("value") if isinstance(record, dict) else None
            same = got == native or (
                isinstance(got, float)
                and isinstance(native, float)
                and math.isclose(got, native, rel_tol=1e-6)
            )
            return Comparison(
                output=i,
                passed=bool(same),
                shape=[],
                numel=1,
                mismatched=0 if same else 1,
                exact=True,
                problem=None if same else f"returned {got!r}, expected {native!r}",
            )
        if not isinstance(record, dict) or record.get("kind") != "tensor":
            kind = record.get("type") or record.get("value") if isinstance(record, dict) else record
            return Comparison(
                output=i,
                passed=False,
                shape=list(native.shape),
                numel=native.numel(),
                problem=f"is {kind!r}, not a tensor",
            )
        expected_shape = list(native.shape)
        if record.get("shape") != expected_shape:
            return Comparison(
                output=i,
                passed=False,
                shape=expected_shape,
                numel=native.numel(),
                problem=f"has shape {tuple(record.get('shape') or ())}, expected {tuple(expected_shape)}",
            )
        want_dtype = tensorio.dtype_name(native.dtype)
        if record.get("dtype") != want_dtype:
            return Comparison(
                output=i,
                passed=False,
                shape=expected_shape,
                numel=native.numel(),
                problem=f"has dtype {record.get('dtype')}, expected {want_dtype}",
            )
        want_device = torch.device(self.backend.torch_device).type
        if record.get("device") != want_device:
            return Comparison(
                output=i,
                passed=False,
                shape=expected_shape,
                numel=native.numel(),
                problem=f"is on device {record.get('device')}, expected {want_device}",
            )
        try:
            got = tensorio.load(
                self.session.workdir, record, max_bytes=native.numel() * native.element_size()
            )
        except tensorio.TransferError as exc:
            return Comparison(
                output=i,
                passed=False,
                shape=expected_shape,
                numel=native.numel(),
                problem=f"could not be read: {exc}",
            )
        if exact is None:
            return tolerance.compare(i, got, native, None, native.dtype, reference="native")
        natives = [native] + (
            [nudged] if isinstance(nudged, torch.Tensor) and nudged.shape == native.shape else []
        )
        return tolerance.compare(i, got, exact, natives, native.dtype)

    def _record_errors(self, comparisons: list[Comparison]) -> None:
        v = self.verdict
        for c in comparisons:
            if c.problem:
                continue
            v.max_abs_error = max(v.max_abs_error or 0.0, c.max_abs_error)
            v.max_rel_error = max(v.max_rel_error or 0.0, c.max_rel_error)
            v.margin = max(v.margin or 0.0, c.margin)

    def _inputs_unchanged(self, name: str, inputs: list[Any], after: Any) -> None:
        if not isinstance(after, list) or len(after) != len(inputs):
            raise self._fail("harness", "the worker did not report its inputs after forward")
        for i, (before, record) in enumerate(zip(inputs, after)):
            if not isinstance(before, torch.Tensor):
                continue
            try:
                now = tensorio.load(
                    self.session.workdir, record, max_bytes=before.numel() * before.element_size()
                )
            except tensorio.TransferError as exc:
                raise self._fail("harness", f"input {i} after forward could not be read: {exc}") from None
            same = (
                now.shape == before.shape
                and now.dtype == before.dtype
                and bool(
                    (
                        now.reshape(-1).view(torch.uint8) == before.contiguous().reshape(-1).view(torch.uint8)
                    ).all()
                )
                if before.numel()
                else now.shape == before.shape
            )
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
        reference_compute = set(self.reference_ops.compute_ops())
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

    @contextlib.contextmanager
    def _timing_lock(self):
        """One timing at a time per device: two processes timing on one GPU disturb each other."""
        if not self.backend.is_performance:
            yield
            return
        path = self.options.timing_lock or os.path.join(
            tempfile.gettempdir(), f"kbmetal-timing-{self.backend.name}.lock"
        )
        with open(path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _time(self) -> None:
        self._enter("timing")
        plan = self.options.timing_plan(self.backend.is_performance)
        name, sent, expected = self.timed_trial
        label = "main"
        with self._timing_lock():
            started = time.perf_counter_ns()
            reply = self._ask(
                {"op": "time", "label": label, "inputs": sent, "seed": self.rng.getrandbits(31), **plan},
                self.options.timing_timeout,
                "timing",
            )
            envelope_ms = (time.perf_counter_ns() - started) / 1e6
            baselines = (
                self._baselines(label, name) if self.backend.is_performance and self.options.baselines else {}
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
        comparisons = self._compare(name, expected, reply, self.instances[label])
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

    def _baselines(self, label: str, name: str) -> dict[str, Timing]:
        """Eager and torch.compile, timed here by the same loop as the candidate; cached."""
        found = dict(self.cached_baselines)
        reference = self.references[label]
        inputs = [
            x.to(self.backend.torch_device) if isinstance(x, torch.Tensor) else x
            for x in self.last_inputs[label]
        ]
        plan = self.options.timing_plan(True)
        refill = _refiller(inputs, self.instances[label])
        kinds = ["eager"] + (["compile"] if self.options.compile_baseline else [])
        with _reference_numerics(self.instances[label].torch_dtype):
            for kind in kinds:
                if kind in found:
                    continue
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
            self.session.close()
            tail = self.session.log_tail()
            if tail:
                v.log_tail = (tail if not v.log_tail else v.log_tail + "\n--- worker log ---\n" + tail)[
                    -6000:
                ]
            v.peak_memory_bytes = self.session.peak_memory or None
            self.session.discard()
        v.log_tail = sandbox.redact(v.log_tail) or ""
        v.compile_log = sandbox.redact(v.compile_log)
        if not v.passed and not v.reason:
            v.reason = "did not complete"


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
