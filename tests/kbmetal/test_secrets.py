"""No secret of the environment reaches a candidate's process, its log, the verdict or the store."""

import json
import os
import pathlib
import subprocess
import sys

from kbm_helpers import problem_path
from procenv import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECRET = "sk-test-0123456789abcdef"
TOKEN = "hf_tokenvalue987654321"

SNOOP = r"""
import os, torch

def _grab():
    found = [f"{k}={v}" for k, v in os.environ.items()]
    pid = os.getpid()
    for _ in range(3):  # parent, grandparent, ...
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        try:
            found.append(open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace"))
        except OSError as exc:
            found.append(f"pid {pid}: {exc}")
    interesting = ("PROVIDER", "HF_", "INNOCENT", "PYTHONPATH")
    lines = [e for block in found for e in block.replace("\0", "\n").splitlines()]
    return "\n".join(e for e in lines if any(k in e for k in interesting) or e.startswith("pid "))

LOOT = _grab()
print(LOOT)

class ModelNew(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("leak: " + LOOT.replace("\n", " ")[:3000])
"""


def test_secrets_stay_out_of_the_candidate_and_every_record(tmp_path):
    solution = tmp_path / "snoop.py"
    solution.write_text(SNOOP)
    store = tmp_path / "kb.sqlite"
    env = child_env()
    env["MY_PROVIDER_API_KEY"] = SECRET
    env["HF_TOKEN"] = TOKEN
    env["INNOCENT_LOOKING"] = SECRET  # a key-shaped value under any name is a secret too
    r = subprocess.run(
        [sys.executable, "-m", "kbmetal.bench", "eval", str(problem_path("L1-001")), str(solution), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    record = json.loads(r.stdout)
    assert "leak:" in record["reason"]  # the candidate did run and did report what it saw
    everything = r.stdout + r.stderr
    assert SECRET not in everything and TOKEN not in everything
    assert "PYTHONPATH=" in record["log_tail"]  # its environment is there, without the secrets
    # and the judge's own environment, read through /proc, shows the names but not the values
    assert "MY_PROVIDER_API_KEY=****" in record["log_tail"]
    # through the store as well
    folder = tmp_path / "sols"
    folder.mkdir()
    (folder / "L1-001.py").write_text(SNOOP)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "kbmetal.bench",
            "--store",
            str(store),
            "run",
            "--solutions",
            str(folder),
            "--problems-dir",
            str(problem_path("L1-001").parents[1]),
            "--concurrency",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr
    import sqlite3

    dump = "\n".join(sqlite3.connect(store).iterdump())
    assert "leak:" in dump and SECRET not in dump and TOKEN not in dump
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in written)
    for report in written:
        if report.is_file():
            text = report.read_text(errors="replace")
            assert SECRET not in text and TOKEN not in text
