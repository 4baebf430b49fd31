"""`bench report [RUN]`: print a stored run and write its report files."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from .cli_errors import UsageError
from .common import store_path, user_errors


def report_command(args: argparse.Namespace) -> int:
    from .. import report
    from ..store import Store

    path = store_path(args)
    if not path.is_file():
        raise UsageError(f"{path}: no run store here (runs are stored by `bench run`; give --store PATH)")
    with user_errors(), Store(path) as store:
        run_id = args.run or store.latest_run()
        if run_id is None:
            raise UsageError(f"{path} holds no runs yet")
        store.run(run_id)  # a clear error for an unknown run
        if args.format == "json":
            print(json.dumps(store.export_json(run_id), indent=1, default=str))
        elif args.format == "csv":
            sys.stdout.write(store.export_csv(run_id))
        elif args.format == "markdown":
            print(report.markdown(store, run_id))
        else:
            report.print_run(store, run_id)
        folder = pathlib.Path(args.out) if args.out else path.parent / run_id
        written = report.write_reports(store, run_id, folder)
        print(
            f"report: {written['html']}, {written['markdown']}, {written['json']}, {written['csv']}",
            file=sys.stderr,
        )
    return 0
