"""Feedback: the previous verdict, compact, as the next turn's message to the model.

What a kernel engineer would want to see, and no more:
- a failure: the stage and kind, the reason, the compiler's own error lines, the first mismatching
  elements with the worst error and the allowance (assert_close's terms), the guards that fired,
  and the end of the traceback;
- a correct kernel: the error margin, its time against PyTorch eager and torch.compile, and where
  the time goes: the per-kernel profile when the backend records one, the share of forward spent in
  PyTorch ops, and how close the kernel runs to the memory-bandwidth bound of the problem.

The text follows from the stored verdict alone (and the problem), so a resumed run rebuilds the
very same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..verdict import Verdict

MAX_COMPILE_LINES = 25
MAX_TRACEBACK_LINES = 20
MAX_SECTION_CHARS = 3000

_ANSWER = "Reply with the complete module in one ```python code block."


@dataclass(frozen=True)
class Roofline:
    """The least traffic a correct kernel must move, and the device's peak bandwidth."""

    bytes: int
    flops: int
    peak_bandwidth_gbs: float


def _clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n... (cut)"


def _compiler_lines(log: str) -> str:
    """The error lines of a compiler log with a line of context after each; else its head."""
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    keep: list[int] = []
    for i, line in enumerate(lines):
        lower = line.lower()
        if "error" in lower or "fatal" in lower:
            keep.extend(j for j in (i, i + 1, i + 2) if j < len(lines) and j not in keep)
    chosen = [lines[i] for i in keep] if keep else lines
    if len(chosen) > MAX_COMPILE_LINES:
        chosen = chosen[:MAX_COMPILE_LINES] + [f"... ({len(chosen) - MAX_COMPILE_LINES} more lines)"]
    return _clip("\n".join(chosen))


def _traceback_tail(log: str) -> str:
    text = log.split("--- worker log ---")[0] if "Traceback" in log.split("--- worker log ---")[0] else log
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    return _clip("\n".join(lines[-MAX_TRACEBACK_LINES:]))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _failure(verdict: Verdict) -> list[str]:
    kind = f" ({verdict.error_kind})" if verdict.error_kind else ""
    parts = [f"Your kernel FAILED at the {verdict.stage} stage{kind}.", "", _clip(verdict.reason or "no reason given")]
    if verdict.compile_log:
        parts += ["", "Compiler output:", "", _indent(_compiler_lines(verdict.compile_log))]
    worst = verdict.worst_comparison()
    if worst is not None and not worst.passed and worst.describe() not in (verdict.reason or ""):
        parts += ["", "First mismatch:", "", _indent(worst.describe())]
    findings = [g for g in verdict.guards if g.severity in ("fail", "flag")]
    if findings:
        parts += ["", "Checks that fired:"]
        parts += [f"- [{g.severity}] {g.guard}: {g.message}" for g in findings[:8]]
    if verdict.error_kind in ("import", "init", "runtime", "crash", "timeout", "memory", "output") and verdict.log_tail:
        parts += ["", "End of the log:", "", _indent(_traceback_tail(verdict.log_tail))]
    hint = _hint(verdict)
    if hint:
        parts += ["", hint]
    parts += ["", "Fix it. " + _ANSWER]
    return parts


def _hint(verdict: Verdict) -> str | None:
    """A line on what usually causes this kind of failure."""
    if verdict.stage == "heldout":
        return "It failed only at sizes other than the ones shown: the kernel assumes a size (hard-coded " \
               "shape, a length that is a multiple of the vector or group width); handle every size."
    if verdict.error_kind == "timeout":
        return "A kernel that never finishes usually loops on a bound it never reaches, or waits at a barrier " \
               "that not every thread of the group reaches."
    if verdict.error_kind == "crash":
        return "A crash usually comes from an access outside a buffer: check every index against its bound."
    return None


def _ms(value: float) -> str:
    return f"{value:.4g} ms"


def _speed(verdict: Verdict, roofline: Roofline | None) -> list[str]:
    timing = verdict.timing
    if timing is None:
        return ["It was not timed."]
    if not timing.is_performance:
        return [f"Timings on this backend are not performance ({timing.method}): no speed feedback."]
    parts = [f"Your kernel takes {_ms(timing.median_ms)} (median of {timing.runs} runs, spread {_ms(timing.iqr_ms)})."]
    for kind, label in (("eager", "PyTorch eager"), ("compile", "torch.compile")):
        base = verdict.baselines.get(kind)
        if base is not None and timing.median_ms > 0:
            ratio = base.median_ms / timing.median_ms
            verdict_word = "faster" if ratio >= 1 else "slower"
            factor = ratio if ratio >= 1 else 1 / ratio
            parts.append(f"- {label}: {_ms(base.median_ms)}: yours is {factor:.2f}x {verdict_word}")
    where = _where_time_goes(verdict, roofline)
    if where:
        parts += ["", "Where the time goes:"] + where
    return parts


def _profile_entry(entry: dict[str, Any]) -> tuple[str, float | None, Any]:
    """A row of metalrt.Profile.summary(), as the verdict stores it."""
    ms = entry.get("total_ms")
    return str(entry.get("kernel") or "?"), float(ms) if isinstance(ms, (int, float)) else None, entry.get("count")


def _where_time_goes(verdict: Verdict, roofline: Roofline | None) -> list[str]:
    lines = []
    timing = verdict.timing
    entries = [_profile_entry(e) for e in (timing.profile if timing else []) if isinstance(e, dict)]
    timed = sorted([e for e in entries if e[1] is not None], key=lambda e: -e[1])
    total = sum(e[1] for e in timed)
    for name, ms, launches in timed[:5]:
        share = f" ({100 * ms / total:.0f}% of kernel time)" if total > 0 else ""
        count = f", {launches} launch{'' if launches == 1 else 'es'}" if launches else ""
        lines.append(f"- kernel {name}: {_ms(ms)}{share}{count}")
    ops = verdict.ops or {}
    share = ops.get("custom_share")
    if isinstance(share, (int, float)) and share < 0.9:
        torch_ms = ops.get("torch_compute_ms")
        names = sorted((ops.get("ops") or {}).keys())[:6] if isinstance(ops.get("ops"), dict) else []
        lines.append(f"- only {100 * share:.0f}% of forward is in your kernels; PyTorch ops take the rest"
                     + (f" ({torch_ms:.3g} ms: {', '.join(names)})" if isinstance(torch_ms, (int, float)) and names else ""))
    if roofline is not None and timing is not None and timing.median_ms > 0 and roofline.peak_bandwidth_gbs > 0:
        achieved = roofline.bytes / (timing.median_ms / 1e3) / 1e9
        use = achieved / roofline.peak_bandwidth_gbs
        lines.append(f"- it must move at least {roofline.bytes / 1e6:.3g} MB: {achieved:.0f} GB/s, {100 * use:.0f}% of "
                     f"the device's {roofline.peak_bandwidth_gbs:.0f} GB/s peak")
        if use > 0.7:
            lines.append("  (near the memory bound: only fewer bytes moved, e.g. by fusing passes, makes it faster)")
        elif roofline.flops and roofline.flops / max(roofline.bytes, 1) > 20:
            lines.append("  (far from the memory bound with many FLOPs per byte: compute-bound; reuse data in "
                         "threadgroup/shared memory and registers)")
        else:
            lines.append("  (far from the memory bound: wider coalesced loads, more work per thread, fewer passes)")
    return lines


def describe(verdict: Verdict, *, attempt: int, roofline: Roofline | None = None) -> str:
    """The feedback message on `verdict`, the verdict of attempt number `attempt`."""
    head = f"# Verdict on your attempt {attempt}"
    if verdict.stage == "extract":
        body = ["No solution could be taken from your answer: " + (verdict.reason or "no code found") + ".", "",
                "Answer with the whole module (imports, kernel source, ModelNew) in ONE ```python code block."]
        return "\n".join([head, ""] + body) + "\n"
    if not verdict.passed:
        return "\n".join([head, ""] + _failure(verdict)) + "\n"
    margin = ""
    if verdict.margin is not None:
        margin = f" (error margin {verdict.margin:.2g}: it used {100 * verdict.margin:.2g}% of the allowed error)"
    body = [f"Your kernel is CORRECT{margin}.", ""] + _speed(verdict, roofline)
    flags = [g for g in verdict.guards if g.severity == "flag"]
    if flags:
        body += ["", "Flagged for review:"] + [f"- {g.guard}: {g.message}" for g in flags]
    body += ["", "Make it faster while keeping it correct. " + _ANSWER]
    return "\n".join([head, ""] + body) + "\n"


def one_line(verdict: Verdict) -> str:
    """The verdict in one line, for the kernels shown in a second round."""
    text = verdict.summary().splitlines()[0] if verdict.summary() else ""
    return text if len(text) <= 200 else text[:197] + "..."


def roofline_for(problem, verdict: Verdict, peak_bandwidth_gbs: float | None) -> Roofline | None:
    """The problem's compulsory traffic at the sizes the verdict ran, where it can be counted."""
    if not peak_bandwidth_gbs or verdict.timing is None or not verdict.timing.is_performance:
        return None
    try:
        from ..problems import roofline

        sizes = {k: tuple(v) if isinstance(v, list) else v for k, v in (verdict.sizes_detail or {}).items()}
        instance = problem.instantiate(sizes or None, dtype=verdict.dtype or None)
        estimate = roofline.estimate(instance)
        return Roofline(int(estimate.bytes), int(estimate.flops), float(peak_bandwidth_gbs))
    except Exception:  # a reference that cannot be traced on fake tensors: no bound to show
        return None
