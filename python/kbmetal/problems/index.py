"""problems/index.json: every bundled problem with its sizes, FLOPs, bytes and roofline times.

Generated, never edited by hand:

    python -m kbmetal.problems.index            # rewrite problems/index.json
    python -m kbmetal.problems.index --check    # exit 1 if it is not current

The evaluator reads it (`load_index()`) for its speed-of-light guard; a test keeps it current.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from .catalog import problem_files, problems_root
from .errors import ProblemError
from .problem import load_problem
from .roofline import DEVICES, estimate

INDEX_VERSION = 1
INDEX_NAME = "index.json"


def _significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def _cost(instance) -> dict:
    roof = estimate(instance)
    return {
        "flops": roof.flops,
        "matmul_flops": roof.trace.matmul_flops,
        "bytes": roof.bytes,
        "roofline_ms": {name: _significant(roof.seconds(name) * 1e3) for name in DEVICES},
        "lower_bound_ms": {name: _significant(roof.lower_bound_seconds(name) * 1e3) for name in DEVICES},
    }


def entry(problem, root: pathlib.Path) -> dict:
    """The index record of one problem: at its default sizes and at each preset."""
    presets = {"default": problem.instantiate("default")}
    presets.update({name: problem.instantiate(name) for name in problem.presets})
    return {
        "id": problem.id,
        "level": problem.level,
        "name": problem.name,
        "path": problem.path.relative_to(root.resolve()).as_posix(),
        "category": problem.category,
        "dtypes": list(problem.dtypes),
        "sizes": {name: inst.sizes for name, inst in presets.items()},
        "cost": {name: _cost(inst) for name, inst in presets.items()},
    }


def build_index(root: pathlib.Path | None = None) -> dict:
    root = root or problems_root()
    problems = [load_problem(path) for path in problem_files(root)]
    return {
        "version": INDEX_VERSION,
        "generated_by": "python -m kbmetal.problems.index",
        "devices": {
            name: {"name": d.name, "bandwidth": d.bandwidth, "fp32_flops": d.fp32_flops}
            for name, d in DEVICES.items()
        },
        "problems": [entry(problem, root) for problem in problems],
    }


def render(index: dict) -> str:
    """One problem per line: a change to one problem is a one-line diff."""
    header = {k: v for k, v in index.items() if k != "problems"}
    lines = json.dumps(header, indent=1)[:-2].splitlines()
    records = [json.dumps(record, separators=(",", ":")) for record in index["problems"]]
    body = ",\n  ".join(records)
    return "\n".join(lines) + ',\n "problems": [\n  ' + body + "\n ]\n}\n"


def load_index(root: pathlib.Path | None = None) -> dict[str, dict]:
    """The committed index, as {problem id: record}."""
    path = (root or problems_root()) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProblemError(path, "no index; run: python -m kbmetal.problems.index") from None
    if index.get("version") != INDEX_VERSION:
        raise ProblemError(path, "index from another version; run: python -m kbmetal.problems.index")
    return {record["id"]: record for record in index["problems"]}


def stale_entries(committed: dict, current: dict) -> list[str]:
    """Ids whose records differ (or exist on one side only); "(header)" if the rest differs."""
    old = {r["id"]: r for r in committed.get("problems", [])}
    new = {r["id"]: r for r in current["problems"]}
    diffs = sorted(pid for pid in old.keys() | new.keys() if old.get(pid) != new.get(pid))
    rest = {k: v for k, v in committed.items() if k != "problems"}
    if rest != {k: v for k, v in current.items() if k != "problems"}:
        diffs.insert(0, "(header)")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kbmetal.problems.index", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=pathlib.Path, default=None, help="problems folder (default: ours)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the index is not current")
    args = parser.parse_args(argv)
    root = args.root or problems_root()
    try:
        current = build_index(root)
    except ProblemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = root / INDEX_NAME
    if args.check:
        try:
            committed = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            committed = {}
        stale = stale_entries(committed, json.loads(render(current)))
        if stale:
            print(
                f"{path} is not current ({', '.join(stale[:10])}{' ...' if len(stale) > 10 else ''}); "
                "run: python -m kbmetal.problems.index",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is current ({len(current['problems'])} problems)")
        return 0
    path.write_text(render(current))
    print(f"wrote {path} ({len(current['problems'])} problems)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
