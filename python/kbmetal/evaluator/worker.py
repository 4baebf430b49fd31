"""The candidate's process: imports the candidate, runs it on the inputs it is sent, reports.

Started by the judge with a scrubbed environment: forked from the judge's fork server (zygote.py,
which has imported torch and this module, and never touched a device) or, where there is none, as
a fresh interpreter (`python -m kbmetal.evaluator.worker`); never forked from the judge itself. Its
stdout and stderr go to a log file; it gets two pipes for the protocol and the judge's exchange
region (exchange.py) for tensors. It never sees a
reference output: the judge computes those in its own process and compares there. What this
process reports about itself (ops, launches, threads, patches) is evidence the judge weighs; what
decides correctness is the outputs it hands back.

A judge starts workers ahead of need (`--backend`): the interpreter, torch, the harness and the
backend's device (its context, timer and thread pools) are ready before a candidate is known, and
the first message names the candidate.

Everything the worker needs is imported and fingerprinted before the candidate's module runs, and
the functions it calls are held in locals, so a candidate that patches a module attribute changes
nothing for the harness and is reported by the fingerprint.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import os
import pathlib
import random
import resource
import sys
import threading
import time
import traceback
from typing import Any

_INTERPRETER_UP = time.time()  # before torch: what the start-up report splits at

import torch

_TORCH_IMPORTED = time.time()

from . import channel as channel_mod
from . import exchange, integrity, launches, oprecord, sandbox, tensorio, timing
from .backends import TORCH_DEVICE
from .channel import Channel

_TRACEBACK_CHARS = 8000
_MSL_WARMUP = """
#include <metal_stdlib>
using namespace metal;
kernel void touch(device float* y [[buffer(0)]], uint i [[thread_position_in_grid]]) { y[i] = 1.0f; }
"""
_WARMUP_SOURCES = {"sim": _MSL_WARMUP, "metal": _MSL_WARMUP}
_clock = time.perf_counter_ns


def _native_threads() -> dict[int, str]:
    """Live OS threads of this process: tid -> name."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {t.native_id: t.name for t in threading.enumerate() if t.native_id}
    threads = {}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                threads[int(tid)] = f.read().strip()
        except OSError:
            continue
    return threads


def _children() -> set[int]:
    pids: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
    except OSError:
        pass
    return pids


def _flatten(value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, torch.Tensor):
        return "tensor", [value]
    if isinstance(value, (tuple, list)):
        return type(value).__name__, list(value)
    return "value", [value]


def _describe_error(exc: BaseException, kind: str) -> dict[str, Any]:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = str(exc).strip().splitlines()
    reply: dict[str, Any] = {
        "ok": False,
        "kind": kind,
        "error_type": type(exc).__name__,
        "message": message[0][:2000] if message else "",
        "traceback": text[-_TRACEBACK_CHARS:],
    }
    log = getattr(exc, "log", None)
    if isinstance(log, str) and log:
        reply["compile_log"] = log[-_TRACEBACK_CHARS:]
    if _is_device_oom(exc):
        reply["device_memory"] = _device_memory()
    return reply


def _is_device_oom(exc: BaseException) -> bool:
    return any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__)


def _device_memory() -> dict[str, int] | None:
    """What the device held when this process ran out of its memory: the judge weighs it to tell
    the candidate's own out-of-memory from one caused by other processes (judge.py)."""
    try:
        free, total = torch.cuda.mem_get_info()
        return {"free": int(free), "total": int(total), "own": int(torch.cuda.memory_reserved())}
    except Exception:  # no CUDA device: nothing to weigh
        return None


def _error_kind(exc: BaseException, stage: str) -> str:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "CompileError" in names:
        return "compile"
    if "ProblemError" in names:
        return "problem"
    if isinstance(exc, MemoryError) or _is_device_oom(exc):
        return "memory"
    return stage


class Worker:
    def __init__(self, chan: Channel, region_fd: int | None = None, forked_at: float | None = None):
        self.chan = chan
        # wall-clock marks of the start-up, for the judge's pre-start planning and report: a
        # forked process starts with torch imported, a fresh interpreter imports it first
        self.startup_marks = (
            {"fork": forked_at}
            if forked_at is not None
            else {"interpreter": _INTERPRETER_UP, "torch": _TORCH_IMPORTED}
        )
        self.region = exchange.WorkerRegion(region_fd)
        self.prepared: str | None = None  # the backend whose device, timer and counter are ready
        self.problem = None
        self.model_cls = None
        self.models: dict[str, torch.nn.Module] = {}
        self.instances: dict[str, Any] = {}
        self.inputs: dict[str, list[Any]] = {}
        self.device = "cpu"
        self.timing: timing.DeviceTiming | None = None
        self.counter: launches.LaunchCounter | None = None
        self.fingerprint: integrity.Fingerprint | None = None
        self.python_threads: set[int] = set()
        self.native_threads: dict[int, str] = {}
        # the harness's own references, taken before any candidate code exists
        self._no_grad = torch.no_grad
        self._view = self.region.tensor
        self._store = self.region.store
        self._record = tensorio.record
        self._write_into = tensorio.write_into
        self._measure = timing.measure
        self._profile_call = timing.profile_call
        self._recorder = oprecord.OpRecorder
        self._current_mode = torch.utils._python_dispatch._get_current_dispatch_mode
        # the C entry point: torch.use_deterministic_algorithms also imports torch._inductor
        # (a second of start-up, and it rebinds torch.manual_seed)
        self._set_deterministic = torch._C._set_deterministic_algorithms

    # -- protocol ---------------------------------------------------------------------------

    def serve(self) -> None:
        self.chan.send(
            {
                "event": "ready",
                "pid": os.getpid(),
                "torch": torch.__version__,
                "startup": {**self.startup_marks, "ready": time.time()},
            }
        )
        handlers = {
            "attach": self.attach,
            "load": self.load,
            "init": self.init,
            "trial": self.trial,
            "time": self.time,
        }
        while True:
            try:
                message = self.chan.recv()
            except channel_mod.ChannelClosed:
                return
            op = message.get("op")
            if op == "exit":
                self.chan.send({"ok": True, "maxrss": self._maxrss()})
                return
            handler = handlers.get(op)
            if handler is None:
                reply = {"ok": False, "kind": "harness", "message": f"unknown op {op!r}"}
            else:
                reply = handler(message)
            reply["maxrss"] = self._maxrss()
            self.chan.send(reply)

    @staticmethod
    def _maxrss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # -- start-up and the exchange region ------------------------------------------------------

    def prepare(self, backend: str) -> None:
        """Make the backend's device ready: its timer, launch counter and thread pools. "auto":
        the best backend present. Failures wait for `load`, which reports them."""
        if backend == "auto":
            from .backends import best

            backend = best()
        self.device = TORCH_DEVICE.get(backend, "cpu")
        self.timing = timing.timing_for(backend)
        self.counter = launches.counter_for(backend)
        self._warm_thread_pools(backend)
        import kbmetal.problems  # noqa: F401 - what `load` needs, imported ahead

        self.prepared = backend

    def attach(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Map the judge's exchange region; read the judge's pattern back and answer with its
        complement, which proves both directions before any tensor travels."""
        try:
            if self.prepared != msg["backend"]:
                self.prepare(msg["backend"])
            self.region.attach(msg["region"], self.device)
            probe = bytes.fromhex(msg["probe"])
            seen = self.region.peek(0, len(probe))
            self.region.poke(0, exchange.complement(seen))
            self.timing.synchronize()
        except Exception as exc:
            return _describe_error(exc, "harness")
        return {"ok": True, "probe_matched": seen == probe}

    # -- load: the problem, the runtime, the candidate ----------------------------------------

    def load(self, msg: dict[str, Any]) -> dict[str, Any]:
        from kbmetal.problems import load_problem

        try:
            self.problem = load_problem(msg["problem"])
        except Exception as exc:
            return _describe_error(exc, "problem")
        try:
            if self.prepared != msg["backend"]:
                self.prepare(msg["backend"])
        except Exception as exc:
            return _describe_error(exc, "harness")
        self.device = msg["device"]
        path = pathlib.Path(msg["source"])
        try:
            if getattr(self.counter, "use_profiler", None) and launches.needs_profiler(path.read_text(errors="replace")):
                self.counter.use_profiler()
                with self.counter.counting():  # its threads start now, before the baseline below
                    torch.ones(1, device=self.device).add_(1).sum().item()
        except Exception as exc:
            return _describe_error(exc, "harness")
        self.python_threads = {t.ident for t in threading.enumerate()}
        self.native_threads = _native_threads()
        watched = [sys.modules[name] for name in list(sys.modules) if name.startswith("kbmetal.evaluator")]
        watched += [
            m for name, m in list(sys.modules.items()) if name == "metalrt" or name.startswith("metalrt.")
        ]
        self.fingerprint = integrity.Fingerprint([m for m in watched if m is not None]).take()

        start = _clock()
        try:
            spec = importlib.util.spec_from_file_location("kbmetal_candidate", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["kbmetal_candidate"] = module
            spec.loader.exec_module(module)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a candidate too
            reply = _describe_error(exc, _error_kind(exc, "import"))
            reply["tampering"] = integrity.guard_call(self.fingerprint.changes)
            return reply
        elapsed = (_clock() - start) / 1e6
        self.model_cls = getattr(module, "ModelNew", None)
        tampering = integrity.guard_call(self.fingerprint.changes)
        if not (isinstance(self.model_cls, type) and issubclass(self.model_cls, torch.nn.Module)):
            return {
                "ok": False,
                "kind": "init",
                "error_type": "MissingModelNew",
                "message": "the solution defines no class ModelNew(nn.Module)",
                "tampering": tampering,
            }
        return {
            "ok": True,
            "ms": elapsed,
            "launches": self.counter.read(),
            "launch_counter": self.counter.source,
            "tampering": tampering,
            **self._side_work(self.native_threads, set()),
        }

    def _warm_thread_pools(self, backend: str) -> None:
        # torch creates its intra-op threads on first use, and the runtime its executor threads on
        # the first launch; create them now, so that they are part of the baseline and never
        # mistaken for threads the candidate left running.
        x = torch.randn(256, 256)
        (x @ x).sum().item()
        y = x.to(self.device)
        (y @ y).sum().item()
        # the launch counter's own first use (a profiling one is switched on, and warmed, in
        # `load`, only for a candidate that needs it: see launches.py)
        with self.counter.counting():
            (y @ y).sum().item()
        if backend in _WARMUP_SOURCES:
            try:
                import metalrt

                lib = metalrt.compile(_WARMUP_SOURCES[backend], backend)
                out = torch.empty(4096, device=self.device)
                lib.touch(out, threads=out.numel())
                lib.touch(out, groups=64, group_size=64)
            except Exception:  # the candidate's own launches will report what is wrong
                pass
        self.timing.synchronize()

    # -- init: ModelNew at some sizes -----------------------------------------------------------

    def init(self, msg: dict[str, Any]) -> dict[str, Any]:
        label = msg["label"]
        try:
            instance = self.problem.instantiate(
                msg.get("sizes"), overrides=msg.get("overrides"), dtype=msg["dtype"]
            )
            init_inputs = instance.init_inputs()
        except Exception as exc:
            return _describe_error(exc, "problem")
        start = _clock()
        try:
            # exactly as ProblemInstance.make_model seeds the reference, so weights agree
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(msg["seed"]))
                model = self.model_cls(*init_inputs)
            model = model.to(dtype=instance.torch_dtype).to(self.device)
        except BaseException as exc:
            return _describe_error(exc, _error_kind(exc, "init"))
        self.models[label] = model
        self.instances[label] = instance
        return {
            "ok": True,
            "ms": (_clock() - start) / 1e6,
            "tampering": integrity.guard_call(self.fingerprint.changes),
        }

    # -- one trial: one forward on new inputs ---------------------------------------------------

    def _receive_inputs(self, label: str, records: list[dict], refill: str) -> list[Any]:
        # views of the exchange region: each is copied into tensors of this process's own before
        # the candidate sees it
        values = [self._view(r) if r.get("kind") == "tensor" else r.get("value") for r in records]
        if refill == "fresh" or label not in self.inputs:
            self.inputs[label] = [
                v.to(self.device, copy=True) if isinstance(v, torch.Tensor) else v for v in values
            ]
        else:
            for target, value in zip(self.inputs[label], values):
                if isinstance(target, torch.Tensor):
                    self._write_into(target, value, quiet=refill == "inplace-quiet")
        return self.inputs[label]

    def _poison(self, on: bool) -> None:
        # Fresh allocations (empty, empty_like, new_empty...) come back filled with NaN (floats)
        # or the largest integer, so a kernel that leaves its output untouched cannot pass on
        # whatever the allocator handed back.
        self._set_deterministic(on, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = on
        self.fingerprint.expect_switch("torch.are_deterministic_algorithms_enabled()", on)
        self.fingerprint.expect_switch("torch.utils.deterministic.fill_uninitialized_memory", on)

    def _side_work(self, before: dict[int, str], children_before: set[int]) -> dict[str, Any]:
        """Threads and processes the candidate left running."""
        python = [
            t.name for t in threading.enumerate() if t.ident not in self.python_threads and t.is_alive()
        ]
        native_now = _native_threads()
        native = [
            f"{name} (tid {tid})"
            for tid, name in native_now.items()
            if tid not in before and not name.startswith("metalrt")
        ]
        children = sorted(_children() - children_before)
        return {"python_threads": python, "new_threads": native, "children": children}

    def trial(self, msg: dict[str, Any]) -> dict[str, Any]:
        label = msg["label"]
        if label not in self.models:
            return {"ok": False, "kind": "harness", "message": f"no model initialised for {label!r}"}
        try:
            inputs = self._receive_inputs(label, msg["inputs"], msg["refill"])
        except Exception as exc:
            return _describe_error(exc, "harness")
        model = self.models[label]
        threads_before = _native_threads()
        children_before = _children()
        recorder = self._recorder(timed=self.device == "cpu")
        mode_kept = True
        self._poison(True)
        start = _clock()
        try:
            with self.counter.counting() as launched, self._no_grad(), recorder:
                output = model(*inputs)
                self.timing.synchronize()
                mode_kept = self._current_mode() is recorder
        except BaseException as exc:
            self._poison(False)
            reply = _describe_error(exc, _error_kind(exc, "runtime"))
            reply["ops"] = recorder.profile.to_dict()
            return reply
        elapsed = (_clock() - start) / 1e6
        self._poison(False)
        reply: dict[str, Any] = {
            "ok": True,
            "elapsed_ms": elapsed,
            "launches": launched.value,
            "ops": recorder.profile.to_dict(),
            "dispatch_mode_kept": mode_kept,
            **self._side_work(threads_before, children_before),
        }
        outbox = msg.get("outbox") or {}
        reply.update(self._report_outputs(output, inputs, outbox.get("outputs") or []))
        reply["inputs_after"] = self._hand_back(inputs, outbox.get("inputs") or [])
        reply["tampering"] = integrity.guard_call(self.fingerprint.changes)
        return reply

    def _hand_back(self, values: list[Any], slots: list[list[int]]) -> list[dict[str, Any]]:
        """Records of `values`, tensors copied into the judge's slots (where one fits)."""
        records = []
        for i, value in enumerate(values):
            if isinstance(value, torch.Tensor):
                try:
                    stored = i < len(slots) and self._store(slots[i], value)
                except Exception:  # no plain bytes (sparse, meta): the judge sees `stored` false
                    stored = False
                records.append(self._record(value, stored=stored))
            else:
                records.append(tensorio.describe(value))
        self.timing.synchronize()  # the judge reads the slots as soon as the reply arrives
        return records

    def _report_outputs(self, output: Any, inputs: list[Any], slots: list[list[int]]) -> dict[str, Any]:
        structure, values = _flatten(output)
        storages = {
            x.untyped_storage().data_ptr(): i
            for i, x in enumerate(inputs)
            if isinstance(x, torch.Tensor) and x.untyped_storage().nbytes()
        }
        aliases = []
        for i, value in enumerate(values):
            if isinstance(value, torch.Tensor) and value.untyped_storage().nbytes():
                ptr = value.untyped_storage().data_ptr()
                if ptr in storages:
                    aliases.append({"output": i, "input": storages[ptr]})
        return {"structure": structure, "outputs": self._hand_back(values, slots), "aliases": aliases}

    # -- timing ---------------------------------------------------------------------------------

    def time(self, msg: dict[str, Any]) -> dict[str, Any]:
        label = msg["label"]
        model, instance = self.models[label], self.instances[label]
        try:
            pristine = [
                self._view(r).to(self.device, copy=True) if r.get("kind") == "tensor" else None
                for r in msg["inputs"]
            ]
        except Exception as exc:
            return _describe_error(exc, "harness")
        inputs = self.inputs[label]
        for target, value in zip(inputs, pristine):
            if isinstance(target, torch.Tensor):
                self._write_into(target, value, quiet=True)
        scalable = [
            i
            for i, x in enumerate(inputs)
            if isinstance(x, torch.Tensor) and x.is_floating_point() and instance.input_domain(i) != "fixed"
        ]
        rng = random.Random(int(msg.get("seed", 0)))

        def refill() -> None:
            # new contents every run, same tensors: no cache keyed on values or addresses helps
            for i in scalable:
                factor = 1.0 - 1e-3 * (0.1 + rng.random())
                self._write_into(inputs[i], pristine[i] * factor, quiet=True)

        threads_before = _native_threads()
        children_before = _children()
        launches_before = self.counter.read()
        try:
            with self._no_grad():
                result, times = self._measure(
                    self.timing,
                    lambda: model(*inputs),
                    subject="candidate",
                    refill=refill,
                    warmup=int(msg["warmup"]),
                    min_runs=int(msg["min_runs"]),
                    max_runs=int(msg["max_runs"]),
                    budget_ms=float(msg["budget_ms"]),
                    stable_within=float(msg.get("stable_within", 0.0)),
                )
                for target, value in zip(inputs, pristine):
                    if isinstance(target, torch.Tensor):
                        self._write_into(target, value, quiet=True)
                # the output the judge compares, from one more (untimed) call that is profiled
                output, result.profile = self._profile_call(lambda: model(*inputs), self.timing.synchronize)
        except BaseException as exc:
            return _describe_error(exc, _error_kind(exc, "runtime"))
        launched = self.counter.read()
        counted = self.counter.cheap and launched is not None and launches_before is not None
        reply = {
            "ok": True,
            "timing": result.__dict__,
            "times": times,
            "launches": launched - launches_before if counted else None,
            **self._side_work(threads_before, children_before),
        }
        reply.update(self._report_outputs(output, inputs, (msg.get("outbox") or {}).get("outputs") or []))
        reply["tampering"] = integrity.guard_call(self.fingerprint.changes)
        return reply


def main(argv: list[str] | None = None, forked_at: float | None = None) -> None:
    """`forked_at`: when the fork server (zygote.py) forked this process, which then has had torch
    and this module since before it existed; None in a fresh interpreter."""
    parser = argparse.ArgumentParser(prog="kbmetal.evaluator.worker")
    parser.add_argument("--fd-in", type=int, required=True)
    parser.add_argument("--fd-out", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--region-fd", type=int, help="the judge's host exchange region")
    parser.add_argument("--backend", help="make this backend ready before the first message (auto: the best)")
    args = parser.parse_args(argv)
    sandbox.die_with_parent(args.parent)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    faulthandler.enable(file=sys.stderr, all_threads=True)
    threads = os.environ.get("KBMETAL_WORKER_THREADS")
    if threads:
        torch.set_num_threads(max(1, int(threads)))
    worker = Worker(Channel(args.fd_in, args.fd_out), args.region_fd, forked_at)
    if args.backend:
        try:
            worker.prepare(args.backend)
        except Exception:  # the first request prepares again and reports what is wrong
            traceback.print_exc()
    worker.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    # skip interpreter teardown: a candidate's atexit hooks and destructors have nothing to add
    os._exit(0)


if __name__ == "__main__":
    main()
