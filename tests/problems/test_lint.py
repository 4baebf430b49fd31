"""Lint flags each kind of degenerate reference, with the reason, and passes a sound one."""

import json

import pytest

from kbmetal.problems import load_problem
from kbmetal.problems.lint import lint_main, lint_problem

TEMPLATE = """
import torch
import torch.nn as nn

N = 64
D = 128

class Model(nn.Module):
    def __init__(self):
        super().__init__()
{init}

    def forward(self, {args}):
{body}

def get_inputs():
    return [{inputs}]

def get_init_inputs():
    return []
"""

X = "torch.randn(N, D)"

CASES = {
    "sound": dict(body="return torch.relu(x) + 0.5 * x"),
    "near-zero": dict(body="return x * 1e-7"),
    "constant": dict(body="return torch.softmax(x.unsqueeze(-1), dim=-1)"),  # softmax over size 1
    "same-across-seeds": dict(
        init="self.w = nn.Parameter(torch.randn(D))", body="return self.w.expand(x.shape[0], -1) + 0 * x"
    ),
    "ignores-input": dict(args="x, y", inputs=f"{X}, {X}", body="return torch.tanh(x)"),
    "nondeterministic": dict(init="self.drop = nn.Dropout(0.5)", body="return self.drop(x)"),
    "batchnorm-training": dict(init="self.bn = nn.BatchNorm1d(D)", body="return self.bn(x)"),
    "non-finite": dict(body="return torch.log(x)"),
    "error": dict(body="return x @ x"),
}


def _source(case: dict) -> str:
    body = "        " + case["body"]
    init = "        " + case.get("init", "pass")
    return TEMPLATE.format(init=init, args=case.get("args", "x"), body=body, inputs=case.get("inputs", X))


@pytest.fixture
def problem_for(write_problem):
    def make(name: str):
        return load_problem(write_problem(_source(CASES[name]), name=f"001_{name.replace('-', '_')}.py"))

    return make


def test_sound_reference_passes(problem_for):
    report = lint_problem(problem_for("sound"))
    assert report.ok, report.findings
    assert report.sizes == "auto-small"  # no small preset: the automatic rule


@pytest.mark.parametrize("check", [name for name in CASES if name != "sound"])
def test_each_degeneracy_is_flagged_with_its_reason(problem_for, check):
    report = lint_problem(problem_for(check))
    assert not report.ok
    assert check in {f.check for f in report.findings}, report.findings
    finding = next(f for f in report.findings if f.check == check)
    assert finding.message  # a sentence saying why
    if check == "error":
        assert "mat1 and mat2 shapes cannot be multiplied" in finding.message
        assert "(line 14)" in finding.message
    if check == "ignores-input":
        assert finding.message.startswith("input 1 (64, 128)")
    if check == "nondeterministic":
        assert "Dropout" in finding.message


def test_lint_main_exit_codes_and_json(problem_for, capsys, tmp_path):
    sound, broken = problem_for("sound"), problem_for("near-zero")
    assert lint_main([str(sound.path)], "small", json=True) == 0
    assert json.loads(capsys.readouterr().out)[0]["ok"] is True
    assert lint_main([str(sound.path.parent)], "small", json=True) == 1
    reports = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["ok"] for r in reports} == {sound.name: True, broken.name: False}
    assert lint_main([str(tmp_path / "missing")], "small", json=False) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_lint_main_prints_a_table(problem_for, capsys):
    problem = problem_for("constant")
    assert lint_main([str(problem.path)], "small", json=False) == 1
    out = capsys.readouterr().out
    assert "L1-001" in out and "constant" in out and "1 flagged" in out


def test_a_file_that_does_not_load_is_reported(write_problem, capsys):
    path = write_problem("import torch\ndef get_inputs(:\n", name="002_broken.py")
    assert lint_main([str(path)], "small", json=True) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["id"] == "L1-002" and report["findings"][0]["check"] == "error"
    assert "syntax error on line 2" in report["findings"][0]["message"]
