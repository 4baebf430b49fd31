"""Progress bars for a generation run: one per model (its chains ended of its chains), one for the
problems (those whose every chain ended), and each model's latest activity beside its bar."""

from __future__ import annotations

import logging

from .keys import redact
from .refine import Chain
from .supervisor import Selection
from .swarm import ProgressView


class RichProgress(ProgressView):
    def __init__(self, console, models: list[str], problems: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console
        self._progress = Progress(
            TextColumn("{task.description}", style="bold"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[note]}", style="dim"), console=console, transient=False,
        )
        width = max([len(m) for m in models] + [8])
        self._problems = self._progress.add_task("problems".ljust(width), total=problems, note="")
        self._models = {m: self._progress.add_task(m.ljust(width), total=0, note="") for m in models}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def chains_added(self, model: str, count: int) -> None:
        task = self._models[model]
        self._progress.update(task, total=self._progress.tasks[task].total + count)

    def chain_note(self, chain: Chain, text: str) -> None:
        self._progress.update(self._models[chain.model.label], note=f"{chain.problem.id} {text}")

    def chain_ended(self, chain: Chain) -> None:
        self._progress.update(self._models[chain.model.label], advance=1,
                              note=f"{chain.problem.id}: {redact(chain.ended or '')}"[:80])

    def problem_done(self, problem_id: str, selection: Selection) -> None:
        chosen = selection.chosen
        note = f"{problem_id}: " + (f"{chosen.model} #{chosen.attempt}" if chosen else "no correct kernel")
        self._progress.update(self._problems, advance=1, note=note)

    def warn(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]warning:[/] {escape(redact(text) or '')}", highlight=False)


class RedactingFilter(logging.Filter):
    """Blanks keys in every record a handler of generation's log writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


class ConsoleHandler(logging.Handler):
    """Warnings and errors of the log, printed above the progress bars."""

    def __init__(self, console):
        super().__init__(logging.WARNING)
        self.console = console
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        style = "red" if record.levelno >= logging.ERROR else "yellow"
        self.console.print(f"[{style}]{record.levelname.lower()}:[/] {escape(record.getMessage())}", highlight=False)
