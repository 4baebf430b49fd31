"""The replay provider: answers from saved work instead of a model, so a run can be judged again
on another machine (a Mac after a Linux run, a GPU after the sim) without calling any model.

    replay:solutions/metal                 a folder of solutions (L1-019.py or 019_relu.py): each
                                           file is the answer to its problem's first attempt
    replay:runs/kbmetal.sqlite             a store: every model of its latest generation run,
    replay:runs/kbmetal.sqlite#RUN_ID      or of the run RUN_ID, answers as it answered then,
    replay:runs/kbmetal.sqlite#RUN_ID@M    or only model M of it

A store replay becomes one model per model of the original run, labelled `replay:<label>`; its
answer to attempt N of a problem is the stored response to attempt N. Feedback differs when the
verdicts differ (another backend, another evaluator), and the stored answers do not know that:
replay re-judges what was written, it does not re-run the conversation. Where the stored run has
no answer (its chain ended earlier), the replayed chain ends too.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sqlite3

from ..config import ModelSpec
from ..errors import ConfigError, NoMoreResponses
from .base import Completion, Provider, Request


def _parse(model: str) -> tuple[pathlib.Path, str | None, str | None]:
    path, _, rest = model.partition("#")
    run, _, label = rest.partition("@")
    if not rest and "@" in path and not pathlib.Path(path).exists():
        path, _, label = path.partition("@")
    return pathlib.Path(path), run or None, label or None


def _is_store(path: pathlib.Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _connect(path: pathlib.Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def expand(spec: ModelSpec) -> list[ModelSpec]:
    """A store replay without a model becomes one spec per model of the stored run; a folder or
    a fully named replay stays one spec. Checks that the source exists."""
    path, run, label = _parse(spec.model)
    if path.is_dir():
        return [spec]
    if not _is_store(path):
        raise ConfigError(f"model {spec.label}: {path} is neither a folder of solutions nor a kbmetal store")
    with _connect(path) as db:
        run = run or _latest_generation_run(db, path)
        try:
            labels = [r["model"] for r in db.execute(
                "SELECT DISTINCT model FROM gen_requests WHERE run_id = ? AND status = 'ok' ORDER BY model", (run,))]
        except sqlite3.OperationalError:
            labels = []
    if not labels:
        raise ConfigError(f"model {spec.label}: run {run!r} of {path} holds no model responses to replay")
    if label is not None:
        if label not in labels:
            raise ConfigError(f"model {spec.label}: run {run} of {path} has no model {label!r}; it has {', '.join(labels)}")
        labels = [label]
    named = spec.label != f"replay:{spec.model}"  # the config gave it a name of its own

    def label_of(name: str) -> str:
        if not named:
            return f"replay:{name}"
        return spec.label if len(labels) == 1 else f"{spec.label}/{name}"

    return [dataclasses.replace(spec, model=f"{path}#{run}@{name}", label=label_of(name)) for name in labels]


def _latest_generation_run(db: sqlite3.Connection, path: pathlib.Path) -> str:
    try:
        row = db.execute("SELECT id FROM runs WHERE kind = 'generation' ORDER BY created_at DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None:
        raise ConfigError(f"{path} holds no generation run to replay (write replay:{path}#RUN_ID to pick one)")
    return row["id"]


class ReplayProvider(Provider):
    kind = "replay"
    cacheable = False

    def __init__(self, spec: ModelSpec, key: str | None = None, **kwargs):
        super().__init__(spec, **kwargs)
        path, run, label = _parse(spec.model)
        self._answers: dict[tuple[str, int], str] = {}
        self._folder: pathlib.Path | None = None
        if path.is_dir():
            self._folder = path
        elif _is_store(path) and run and label:
            with _connect(path) as db:
                for row in db.execute(
                    "SELECT problem_id, attempt, response FROM gen_requests WHERE run_id = ? AND model = ? "
                    "AND status = 'ok' ORDER BY id", (run, label)):
                    self._answers[(row["problem_id"], int(row["attempt"]))] = row["response"]
        else:
            raise ConfigError(f"model {spec.label}: cannot replay {spec.model!r} (give a folder, or STORE#RUN@MODEL)")

    def describe(self) -> str:
        return f"{self.spec.label} (replay of {self.spec.model})"

    def bind(self, problems) -> None:
        """Match a folder's files to the run's problems (by id or by file stem)."""
        if self._folder is None:
            return
        from ...solutions import SolutionsError, match

        try:
            matched, _ = match(self._folder, problems)
        except SolutionsError as exc:
            raise ConfigError(f"model {self.spec.label}: {exc}") from None
        for solution in matched:
            try:
                text = solution.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"model {self.spec.label}: cannot read {solution.path} ({exc})") from None
            self._answers[(solution.problem.id, 1)] = f"```python\n{text.rstrip()}\n```\n"

    def _send(self, request: Request) -> Completion:
        answer = self._answers.get((request.problem_id, request.attempt))
        if answer is None:
            raise NoMoreResponses(f"{self.describe()} holds no answer to attempt {request.attempt} of {request.problem_id}")
        return Completion(text=answer, finish_reason="stop")
