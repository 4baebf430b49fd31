"""Reports of a run: a terminal table (rich), Markdown and HTML files, JSON and CSV exports, and
plots when matplotlib is installed.

Every view is built from the same rows (`Store.verdicts`) and the same summary
(`metrics.summarize`), so the table, the files and the exports never disagree.
"""

from __future__ import annotations

import html
import json
import pathlib
from typing import Any

from . import metrics
from .store import Store


def _fmt(value: float | None, spec: str = ".3g", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def verdict_cell(row: dict[str, Any]) -> str:
    if row["passed"]:
        text = "PASS"
    else:
        text = f"FAIL ({row['stage']}: {row['error_kind'] or 'error'})"
    if row.get("flagged"):
        text += " [review]"
    return text


def time_cell(row: dict[str, Any]) -> str:
    if row.get("time_ms") is None:
        return "-"
    text = f"{row['time_ms']:.3g} ms"
    return text if row.get("timing_is_performance") else text + " (sim)"


def reason_cell(row: dict[str, Any], width: int = 90) -> str:
    if row["passed"]:
        notes = [g["message"] for g in row.get("guards", []) if g["severity"] == "flag"]
        return notes[0][:width] if notes else ""
    reason = (row.get("reason") or "").splitlines()[0] if row.get("reason") else ""
    return reason[:width]


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """problem | verdict | error margin | time | speedup vs eager | vs compile | note"""
    return [
        [
            row["problem_id"] + (f" [{row['model']}#{row['attempt']}]" if row.get("model") else ""),
            verdict_cell(row),
            _fmt(row.get("margin"), ".2g"),
            time_cell(row),
            _fmt(row.get("speedup"), ".2f", "x"),
            _fmt(row.get("speedup_compile"), ".2f", "x"),
            reason_cell(row),
        ]
        for row in rows
    ]


HEADERS = ["problem", "verdict", "error margin", "time", "vs eager", "vs compile", "note"]


def summary_rows(summary: dict[str, dict], ps=(0.0, 1.0, 2.0)) -> list[list[str]]:
    rows = []
    for group, data in summary.items():
        fast = data["fast_p"]["eager"]
        rows.append(
            [
                group,
                str(data["problems"]),
                str(data["correct"]),
                *[_fmt(fast.get(p), ".2f") for p in ps],
                _fmt(data["fast_p"]["compile"].get(1.0), ".2f"),
                _fmt(data["geomean_speedup"]["eager"], ".2f", "x"),
                _fmt(data["geomean_speedup"]["compile"], ".2f", "x"),
            ]
        )
    return rows


SUMMARY_HEADERS = ["level", "problems", "correct", "fast_0", "fast_1", "fast_2", "fast_1 (compile)",
                   "geomean vs eager", "geomean vs compile"]  # fmt: skip


def print_run(store: Store, run_id: str, console=None) -> None:
    """The results table and the summary, on the terminal. Speedup columns appear only where
    timings are performance."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = store.verdicts(run_id)
    performance = any(r.get("timing_is_performance") for r in rows)
    keep = [i for i, h in enumerate(HEADERS) if performance or h not in ("vs eager", "vs compile")]
    table = Table(title=f"run {run_id}")
    for i in keep:
        header = HEADERS[i]
        table.add_column(
            header,
            overflow="fold",
            no_wrap=header in ("problem", "error margin", "time"),
            ratio=3 if header == "note" else None,
        )
    for cells, row in zip(table_rows(rows), rows):
        style = None if row["passed"] else "red"
        if row.get("flagged"):
            style = "yellow"
        table.add_row(*[cells[i] for i in keep], style=style)
    console.print(table)
    summary = metrics.summarize(metrics.results_from_rows(rows))
    stable = Table(title="fast_p: correct and > p x faster than eager, over all problems")
    summary_keep = [i for i, h in enumerate(SUMMARY_HEADERS) if performance or i < 4]
    for i in summary_keep:
        stable.add_column(SUMMARY_HEADERS[i])
    for cells in summary_rows(summary):
        stable.add_row(*[cells[i] for i in summary_keep])
    console.print(stable)
    if rows and not performance and store.run(run_id).get("backend") == "sim":
        console.print("[dim]sim timings are not performance: no speedups, and fast_p only for p = 0[/dim]")


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(store: Store, run_id: str) -> str:
    run = store.run(run_id)
    rows = store.verdicts(run_id)
    summary = metrics.summarize(metrics.results_from_rows(rows))
    parts = [
        f"# kbmetal run {run_id}",
        "",
        f"- backend: {run['backend']} ({run['device']}), sizes: {run['sizes']}, status: {run['status']}",
        f"- kbmetal {run['kbmetal_version']}, torch {run['torch_version']}, host {run['host']}",
        f"- candidates judged: {len(rows)} of {len(store.candidates(run_id))}",
        "",
        "## Summary",
        "",
        _markdown_table(SUMMARY_HEADERS, summary_rows(summary)),
        "",
        "## Verdicts",
        "",
        _markdown_table(HEADERS, table_rows(rows)),
        "",
    ]
    failures = [r for r in rows if not r["passed"] or r.get("flagged")]
    if failures:
        parts += ["## Details", ""]
        for row in failures:
            parts.append(f"### {row['problem_id']}: {verdict_cell(row)}")
            parts.append("")
            parts.append("```")
            parts.append(row.get("reason") or "")
            for g in row["guards"]:
                if g["severity"] != "info":
                    parts.append(f"[{g['severity']}] {g['guard']}: {g['message']}")
            parts.append("```")
            parts.append("")
    return "\n".join(parts)


_CSS = """
body { font-family: -apple-system, system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.fail td { background: #fdecec; } tr.flag td { background: #fff6d6; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""


def _html_table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def html_report(store: Store, run_id: str, plots: list[str] | None = None) -> str:
    run = store.run(run_id)
    rows = store.verdicts(run_id)
    summary = metrics.summarize(metrics.results_from_rows(rows))
    classes = ["flag" if r.get("flagged") else ("" if r["passed"] else "fail") for r in rows]
    body = [
        f"<h1>kbmetal run {html.escape(run_id)}</h1>",
        f"<p>backend {html.escape(str(run['backend']))} ({html.escape(str(run['device']))}), sizes "
        f"{html.escape(str(run['sizes']))}, torch {html.escape(str(run['torch_version']))}, "
        f"{len(rows)} of {len(store.candidates(run_id))} candidates judged.</p>",
        "<h2>Summary</h2>",
        _html_table(SUMMARY_HEADERS, summary_rows(summary)),
        "<h2>Verdicts</h2>",
        _html_table(HEADERS, table_rows(rows), classes),
    ]
    for name in plots or []:
        body.append(f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}"></p>')
    failures = [r for r in rows if not r["passed"] or r.get("flagged")]
    if failures:
        body.append("<h2>Details</h2>")
        for row in failures:
            body.append(f"<h3>{html.escape(row['problem_id'])}: {html.escape(verdict_cell(row))}</h3>")
            text = [row.get("reason") or ""]
            text += [
                f"[{g['severity']}] {g['guard']}: {g['message']}"
                for g in row["guards"]
                if g["severity"] != "info"
            ]
            if row.get("log_tail"):
                text += ["", "log tail:", row["log_tail"][-2000:]]
            body.append(f"<pre>{html.escape(chr(10).join(text))}</pre>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>kbmetal run {html.escape(run_id)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def plot(store: Store, run_id: str, folder: pathlib.Path) -> list[str]:
    """Speedup plots, when matplotlib is installed and timings are performance. File names."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows = [r for r in store.verdicts(run_id) if r["passed"] and r.get("speedup") is not None]
    if not rows:
        return []
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * len(rows)), 3.5))
    ax.bar([r["problem_id"] for r in rows], [r["speedup"] for r in rows])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("speedup vs eager")
    ax.set_yscale("log")
    ax.tick_params(axis="x", rotation=90)
    fig.tight_layout()
    name = "speedup.png"
    fig.savefig(folder / name, dpi=120)
    plt.close(fig)
    return [name]


def write_reports(store: Store, run_id: str, folder: str | pathlib.Path) -> dict[str, pathlib.Path]:
    """report.md, report.html, verdicts.json, verdicts.csv (and plots) under `folder`."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots = plot(store, run_id, folder)
    written = {
        "markdown": folder / "report.md",
        "html": folder / "report.html",
        "json": folder / "verdicts.json",
        "csv": folder / "verdicts.csv",
    }
    written["markdown"].write_text(markdown(store, run_id), encoding="utf-8")
    written["html"].write_text(html_report(store, run_id, plots), encoding="utf-8")
    written["json"].write_text(json.dumps(store.export_json(run_id), indent=1, default=str), encoding="utf-8")
    written["csv"].write_text(store.export_csv(run_id), encoding="utf-8")
    for name in plots:
        written[name] = folder / name
    return written
