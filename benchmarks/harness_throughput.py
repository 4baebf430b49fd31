"""Harness throughput: candidates judged per minute on the bundled solutions, every stage counted.

    python benchmarks/harness_throughput.py --out DIR                 # the best backend here
    python benchmarks/harness_throughput.py --out DIR --backend sim   # the sim, `small` sizes

Issue 5's target: at least 30 candidates per minute on the bundled CUDA solutions on one H100, at
the problems' default sizes, with default trials and warm baselines. Sections:

  components  (in a process of its own, gone before the passes) the judge's own work on one problem (--component-problem, default L1-012) at the
              run's sizes, in this process: drawing each distribution's inputs, the reference
              (native + float64 + nudged float64 + calibration), a comparison, and a tensor's trip
              through a host exchange region. What a candidate costs the judge before its
              process does anything.
  warm-up     `python -m kbmetal.bench run` over the solutions with one trial: measures the eager
              baselines (and torch.compile's, with --compile-baseline) into the store and fills
              metalrt's kernel cache. Not counted.
  measured    the same solutions as a new run of the same command with the default trials and
              the store's (warm) baselines. Counted from the command's start to its exit: the
              CLI's start-up, planning, every judge and candidate process, every stage of every
              candidate, the report. Also given: the steady state (first verdict to last).

Printed: a table of the measured run (one row per candidate: verdict and seconds per stage, then
the judge's parts: `wait`, the start-up of the candidate's process that pre-starting did not
hide; `start`, how long that process took to start, hidden or not; compile, reference, exchange,
compare), the throughput and the target; then each failure's reason. Written to DIR: summary.json (all of
it, with every verdict's durations), table.md, each pass's log and report folder.

The torch.compile baseline is off in both passes unless --compile-baseline: with warm baselines the
measured pass does the same work either way, and warming it takes minutes of compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
STAGES = ("static", "prepare", "import", "init", "correctness", "heldout", "timing")
PARTS = ("worker_wait", "worker_startup_fork", "worker_startup_ready", "compile", "reference", "exchange", "compare")
TARGET_PER_MINUTE = 30.0


class Missing(Exception):
    """Something this benchmark needs is not here; the message says what to do."""


def log(text: str = "") -> None:
    print(text, flush=True)


def _checkout_paths() -> list[str]:
    """The checkout's Python sources, ahead of any installed copy. src/ only when it holds a
    built extension (scripts/dev-build): otherwise it would hide a `pip install`ed metalrt."""
    paths = [str(REPO / "python")]
    if any((REPO / "src" / "metalrt").glob("_C*.so")):  # not _C.pyi, which is tracked
        paths.insert(0, str(REPO / "src"))
    return paths


def _environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(_checkout_paths() + inherited)
    return env


# -- preflight ------------------------------------------------------------------------------------


def preflight(args) -> dict[str, Any]:
    """The backend, the solutions and the versions, or a Missing with the fix."""
    sys.path[:0] = _checkout_paths()
    try:
        import torch
    except ImportError:
        raise Missing("PyTorch is not installed: pip install torch") from None
    try:
        import metalrt  # noqa: F401
    except ImportError as exc:
        raise Missing(
            f"metalrt cannot be imported ({exc}): build it with scripts/dev-build in this checkout, "
            "or pip install ."
        ) from None
    from kbmetal import solutions as sol
    from kbmetal.evaluator import backends
    from kbmetal.problems import load_problems

    try:
        backend = backends.resolve(args.backend)
    except backends.BackendError as exc:
        raise Missing(str(exc)) from None
    folder = pathlib.Path(args.solutions) if args.solutions else sol.bundled_dir(backend.name)
    if not folder.is_dir():
        raise Missing(f"{folder}: no solutions folder for the {backend.name} backend; give --solutions DIR")
    matched, _ = sol.match(folder, load_problems(None))
    if args.problems:
        wanted = {p.strip() for p in args.problems.split(",") if p.strip()}
        matched = [s for s in matched if s.problem.id in wanted]
    if not matched:
        raise Missing(f"{folder}: no solution file matches a bundled problem (or --problems)")
    info = {
        "backend": backend.name,
        "device": backend.device_name,
        "sizes": args.sizes or backend.default_sizes,
        "solutions": str(folder),
        "candidates": len(matched),
        "problems": [s.problem.id for s in matched],
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    return info  # nothing here touches the GPU: this process holds none of it during the passes


# -- components -----------------------------------------------------------------------------------


def _timed(fn) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def section_components(args, info: dict[str, Any]) -> dict[str, Any]:
    """The judge's own work for one problem at the run's sizes, in this process."""
    import torch
    from kbmetal.evaluator import backends, exchange, tolerance
    from kbmetal.evaluator.inputs import draw_inputs
    from kbmetal.evaluator.reference import Reference
    from kbmetal.evaluator.timing import timing_for
    from kbmetal.problems import find_problem
    from kbmetal.problems.distributions import DISTRIBUTIONS

    backend = backends.resolve(info["backend"])
    instance = find_problem(args.component_problem).instantiate(info["sizes"])
    sync = timing_for(backend.name).synchronize
    where = backend.exact_device
    log(f"== components: {instance.problem.id} at {info['sizes']} sizes, references on {where} ==")
    found: dict[str, Any] = {"problem": instance.problem.id, "device": where}
    if backend.name == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        found["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)

    def timed_sync(fn):
        def run():
            value = fn()
            sync()
            return value

        return _timed(run)

    drawn = {}
    for distribution in DISTRIBUTIONS:
        drawn[distribution], seconds = timed_sync(lambda d=distribution: draw_inputs(instance, 1, d, where))
        found[f"draw_{distribution}_s"] = seconds
    tensors = [x for x in drawn["native"] if isinstance(x, torch.Tensor)]
    megabytes = sum(x.numel() * x.element_size() for x in tensors) / 2**20
    log(f"  inputs ({megabytes:.0f} MiB): " + ", ".join(f"{d} {found[f'draw_{d}_s']:.3f} s" for d in DISTRIBUTIONS))
    reference, found["reference_models_s"] = _timed(lambda: Reference(instance, backend.torch_device, 7, sync, where))
    computed = []
    for distribution in DISTRIBUTIONS:
        trial, seconds = timed_sync(lambda d=distribution: reference.compute(drawn[d], 11))
        computed.append(seconds)
        found[f"reference_{distribution}_s"] = seconds
    log(
        f"  reference per trial (native, float64, nudged float64, calibration): "
        f"median {statistics.median(computed):.3f} s (models built in {found['reference_models_s']:.3f} s)"
    )
    expected = next((o for o in trial.outputs if o.is_tensor and o.calibration is not None), None)
    if expected is not None:
        with torch.no_grad():
            got = reference.native_model(*[x.to(backend.torch_device) if isinstance(x, torch.Tensor) else x
                                           for x in drawn[DISTRIBUTIONS[-1]]])
        got = got[0] if isinstance(got, (tuple, list)) else got
        _, found["compare_s"] = timed_sync(
            lambda: tolerance.compare(0, got, expected.tensor, None, expected.dtype, calibration=expected.calibration)
        )
        log(f"  comparison of one output: {found['compare_s']:.3f} s")
    if tensors:
        region = exchange.HostRegion()
        try:
            x = tensors[0]
            n = exchange.nbytes_of(x)
            region.ensure(n)
            slot = exchange.Slot(0, n)
            _, found["host_write_s"] = _timed(lambda: region.write(slot, x))
            _, found["host_read_s"] = timed_sync(lambda: region.read(slot, x.dtype, list(x.shape), x.device))
        finally:
            region.close()
        log(
            f"  host exchange region, one {n / 2**20:.0f} MiB tensor: write {found['host_write_s']:.3f} s, "
            f"read {found['host_read_s']:.3f} s"
            + (" (the CUDA region moves it device to device instead)" if where == "cuda" else "")
        )
    found.update(startup_components(backend.name))
    return found


STARTUP_PROCESSES = 3  # started at once, as a judge's spares are


def startup_components(backend: str) -> dict[str, Any]:
    """Seconds until a candidate's process is ready (its device included), forked from the fork
    server and as a fresh interpreter: the median of a few started at once. The fork server is
    started first, so the forked figure is the steady one a judge sees after its first spares."""
    from kbmetal.evaluator import zygote
    from kbmetal.evaluator.session import SessionConfig, WorkerSession

    found: dict[str, Any] = {}
    for label, fork in (("fork", True), ("spawn", False)):
        if fork and zygote.available():  # the server up and its imports done
            warm = WorkerSession(SessionConfig(fork_server=True), backend).start()
            warm.wait_ready()
            warm.discard()
        sessions = [WorkerSession(SessionConfig(fork_server=fork), backend).start() for _ in range(STARTUP_PROCESSES)]
        try:
            for s in sessions:
                s.wait_ready()
            marks = {k: sorted(s.startup.get(k, 0.0) for s in sessions)[len(sessions) // 2] for k in sessions[0].startup}
        finally:
            for s in sessions:
                s.discard()
        found[f"startup_{label}"] = {"launch": sessions[0].launch, **marks}
    zygote.stop_shared()
    show = lambda m: ", ".join(f"{k} {v:.2f} s" for k, v in m.items() if k != "launch")  # noqa: E731
    log(
        f"  candidate process start-up ({STARTUP_PROCESSES} at once, median): forked from the fork server: "
        f"{show(found['startup_fork'])}; fresh interpreter: {show(found['startup_spawn'])}"
    )
    return found


def components_apart(args, work: pathlib.Path) -> dict[str, Any]:
    """The components section in a process of its own: the GPU memory it takes (a problem's
    inputs and references at default sizes, gigabytes) is given back before the passes."""
    result = work / "components.json"
    result.unlink(missing_ok=True)
    argv = [a for a in sys.argv[1:]]
    subprocess.run([sys.executable, __file__, *argv, "--components-json", str(result)], env=_environment())
    if not result.exists():
        return {"error": "the components process wrote nothing (its output is above)"}
    return json.loads(result.read_text())


# -- the passes -----------------------------------------------------------------------------------


def _bench_command(args, info, store: pathlib.Path, run_id: str, out: pathlib.Path, extra: list[str]) -> list[str]:
    command = [
        sys.executable, "-m", "kbmetal.bench", "--store", str(store), "run",
        "--solutions", info["solutions"], "--backend", info["backend"],
        "--run-id", run_id, "--fresh", "--out", str(out), *extra,
    ]  # fmt: skip
    if args.sizes:
        command += ["--sizes", args.sizes]
    if not args.compile_baseline:
        command.append("--no-compile-baseline")
    if args.concurrency:
        command += ["--concurrency", str(args.concurrency)]
    if args.problems:
        command += ["--problems", args.problems]
    return command


def run_pass(args, info, work: pathlib.Path, name: str, extra: list[str]) -> dict[str, Any]:
    """One `bench run`, stopped after --pass-timeout seconds; what it judged is in the store."""
    from kbmetal.store import Store

    run_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    store = work / "store.sqlite"
    command = _bench_command(args, info, store, run_id, work / name, extra)
    log_path = work / f"{name}.log"
    started = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_environment(), cwd=work,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=args.pass_timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            code, timed_out = None, True
    seconds = time.perf_counter() - started
    verdicts, planned, created = [], 0, None
    if store.exists():
        with Store(store) as db:
            if any(r["id"] == run_id for r in db.runs()):
                planned = len(db.candidates(run_id))
                verdicts = db.verdicts(run_id)
                created = db.run(run_id).get("created_at")
    result = {
        "name": name,
        "command": " ".join(command),
        "exit": code,
        "timed_out": timed_out,
        "seconds": seconds,
        "planned": planned,
        "judged": len(verdicts),
        "passed": sum(1 for v in verdicts if v.get("passed")),
        "run_created_at": created,
        "verdicts": verdicts,
        "log": str(log_path),
    }
    if not verdicts:
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        result["log_tail"] = tail
    return result


# -- the table ------------------------------------------------------------------------------------


def _row(v: dict[str, Any]) -> dict[str, Any]:
    record = v.get("record") or {}
    durations = record.get("durations") or {}
    row = {
        "problem": v["problem_id"],
        "passed": bool(v.get("passed")),
        "reason": "" if v.get("passed") else (v.get("reason") or "")[:160],
        "total": sum(float(durations.get(s, 0.0)) for s in (*STAGES, "complete")),
        "exchange_kind": (record.get("options") or {}).get("exchange", "-"),
        "retried": (record.get("options") or {}).get("retried"),
        "exchange_note": (record.get("options") or {}).get("exchange_note"),
        "time_ms": v.get("time_ms"),
        "speedup": v.get("speedup"),
    }
    for key in (*STAGES, *PARTS):
        row[key] = float(durations.get(key, 0.0))
    return row


_COLUMNS = [  # header, width, cell
    ("problem", 8, lambda r: r["problem"]),
    ("verdict", 7, lambda r: "pass" if r["passed"] else "FAIL"),
    ("total", 6, lambda r: f"{r['total']:.2f}"),
    *[(stage[:7], 7, lambda r, s=stage: f"{r[s]:.2f}") for stage in STAGES],
    ("|", 1, lambda r: "|"),
    ("wait", 5, lambda r: f"{r['worker_wait']:.2f}"),
    ("fork", 5, lambda r: f"{r['worker_startup_fork']:.2f}"),
    ("start", 5, lambda r: f"{r['worker_startup_ready']:.2f}"),
    ("compile", 7, lambda r: f"{r['compile']:.2f}"),
    ("ref", 5, lambda r: f"{r['reference']:.2f}"),
    ("exch", 5, lambda r: f"{r['exchange']:.2f}"),
    ("cmp", 5, lambda r: f"{r['compare']:.2f}"),
    ("via", 4, lambda r: r["exchange_kind"]),
    ("kern ms", 8, lambda r: f"{r['time_ms']:.3f}" if r["time_ms"] else "-"),
    ("x eager", 7, lambda r: f"{r['speedup']:.2f}" if r["speedup"] else "-"),
]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per candidate, seconds per stage, then the judge's parts; medians last."""

    def line(cells: list[str]) -> str:
        return " ".join(
            f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, (_, w, _)) in enumerate(zip(cells, _COLUMNS))
        )

    lines = [line([h for h, _, _ in _COLUMNS])]
    lines += [line([cell(r) for _, _, cell in _COLUMNS]) for r in rows]
    if rows:
        numeric = ("total", *STAGES, *PARTS)
        median = {k: statistics.median(r[k] for r in rows) for k in numeric}
        median.update(problem="median", passed=True, exchange_kind="", time_ms=None, speedup=None)
        cells = [cell(median) for _, _, cell in _COLUMNS]
        cells[1] = ""
        lines.append(line(cells))
    return lines


def throughput(result: dict[str, Any]) -> dict[str, float | None]:
    judged, seconds = result["judged"], result["seconds"]
    end_to_end = 60.0 * judged / seconds if seconds > 0 else 0.0
    stamps = sorted(float(v["created_at"]) for v in result["verdicts"] if v.get("created_at"))
    steady = None
    if len(stamps) >= 3 and stamps[-1] > stamps[0]:
        steady = 60.0 * (len(stamps) - 1) / (stamps[-1] - stamps[0])
    first = stamps[0] - result["run_created_at"] if stamps and result.get("run_created_at") else None
    return {"end_to_end_per_minute": end_to_end, "steady_per_minute": steady, "first_verdict_after_s": first}


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for summary.json, table.md, logs and reports")
    parser.add_argument("--backend", choices=("cuda", "metal", "sim"), help="default: the best backend present")
    parser.add_argument("--sizes", help="size preset (default: the backend's: default on a GPU, small on the sim)")
    parser.add_argument("--solutions", help="solutions folder (default: the bundled ones for the backend)")
    parser.add_argument("--problems", help="only these problems, e.g. L1-012,L1-024")
    parser.add_argument("--concurrency", type=int, help="judges at once (default: the CLI's: 2 on a GPU)")
    parser.add_argument("--compile-baseline", action="store_true", help="warm and use the torch.compile baseline")
    parser.add_argument("--pass-timeout", type=float, default=240.0, help="seconds each pass may take (default 240)")
    parser.add_argument("--component-problem", default="L1-012", help="problem of the components section")
    parser.add_argument("--skip", nargs="*", default=[], choices=["components", "warm-up"], help="sections to skip")
    parser.add_argument("--components-json", help=argparse.SUPPRESS)  # the components section's own process
    args = parser.parse_args(argv)
    if args.components_json:
        try:
            found = section_components(args, preflight(args))
        except Exception as exc:  # noqa: BLE001 - reported by the parent
            found = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"  components failed: {found['error']}")
        pathlib.Path(args.components_json).write_text(json.dumps(found, default=str))
        return 0
    work = pathlib.Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "store.sqlite").unlink(missing_ok=True)  # a fresh store: warm means warmed by this run
    summary: dict[str, Any] = {"argv": sys.argv[1:]}
    try:
        info = preflight(args)
    except Missing as exc:
        log(f"error: {exc}")
        return 2
    summary["setup"] = info
    log(
        f"harness throughput: {info['candidates']} solutions from {info['solutions']} on {info['backend']} "
        f"({info['device']}), sizes {info['sizes']}, torch {info['torch']}, {info['cpus']} CPUs"
    )
    if "components" not in args.skip:
        summary["components"] = components_apart(args, work)
    if "warm-up" not in args.skip:
        log("== warm-up pass (1 trial: baselines into the store, kernels into the cache; not counted) ==")
        warm = run_pass(args, info, work, "warm-up", ["--trials", "1"])
        log(f"  {warm['judged']}/{warm['planned']} judged in {warm['seconds']:.1f} s"
            + (" (stopped at the time limit)" if warm["timed_out"] else ""))
        summary["warm_up"] = {k: v for k, v in warm.items() if k != "verdicts"}
        if not warm["judged"]:
            log(f"  the warm-up pass judged nothing; its log ({warm['log']}) ends with:")
            log(warm.get("log_tail", ""))
            (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
            return 1
    log("== measured pass (default trials, warm baselines, every stage counted) ==")
    measured = run_pass(args, info, work, "measured", [])
    rows = [_row(v) for v in measured["verdicts"]]
    lines = table(rows)
    for line in lines:
        log("  " + line)
    rates = throughput(measured)
    summary["measured"] = {k: v for k, v in measured.items() if k != "verdicts"}
    summary["measured"].update(rates)
    summary["rows"] = rows
    for row in rows:
        if not row["passed"]:
            log(f"  {row['problem']} failed: {row['reason']}")
        if row.get("retried"):
            log(f"  {row['problem']} was judged twice: {row['retried']}")
        if row.get("exchange_note"):
            log(f"  {row['problem']}: {row['exchange_note']}")
    if not measured["judged"]:
        log(f"  the measured pass judged nothing; its log ({measured['log']}) ends with:")
        log(measured.get("log_tail", ""))
    steady = rates["steady_per_minute"]
    log(
        f"  {measured['judged']}/{measured['planned']} judged ({measured['passed']} passed) in "
        f"{measured['seconds']:.1f} s end to end = {rates['end_to_end_per_minute']:.1f} per minute"
        + (f"; steady state {steady:.1f} per minute" if steady else "")
        + (f"; first verdict after {rates['first_verdict_after_s']:.1f} s" if rates["first_verdict_after_s"] else "")
        + (" (stopped at the time limit)" if measured["timed_out"] else "")
    )
    met = rates["end_to_end_per_minute"] >= TARGET_PER_MINUTE and measured["judged"] == measured["planned"]
    if info["backend"] == "sim":
        verdict = "n/a (the target is for a GPU; the sim judges at small sizes on this machine's CPU)"
    else:
        verdict = "MET" if met else "NOT MET"
    log(f"  target >= {TARGET_PER_MINUTE:.0f} candidates per minute end to end (issue 5): {verdict}")
    summary["target"] = {"per_minute": TARGET_PER_MINUTE, "verdict": verdict}
    (work / "table.md").write_text("\n".join(["```", *lines, "```", ""]))
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    log(f"details: {work / 'summary.json'}, {work / 'table.md'}, logs and reports in {work}")
    return 0 if measured["judged"] else 1


if __name__ == "__main__":
    sys.exit(main())
