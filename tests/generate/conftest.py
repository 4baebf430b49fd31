"""Fixtures for generation's tests: the scripted server, planted keys, the command line in this
process. Shared helpers live in gen_helpers (a conftest is not importable by name across folders)."""

from __future__ import annotations

import pytest
from gen_helpers import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, Result
from scripted_server import ScriptedServer


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    return {"openai": OPENAI_KEY, "anthropic": ANTHROPIC_KEY, "google": GEMINI_KEY}


@pytest.fixture
def cli(capsys):
    """`python -m kbmetal.bench ARGS` in this process (candidates still run in worker processes)."""
    from kbmetal.bench import main

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run
