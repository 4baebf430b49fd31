"""The environment for child Python processes started by tests.

A child must import the same metalrt and kbmetal as the test process: the working tree when
the suite runs with PYTHONPATH=src:python, the installed wheel when it runs after
`pip install .` (as CI does). Forcing the checkout's src/ would hide the installed extension,
which a clean checkout does not have.
"""

from __future__ import annotations

import os
from pathlib import Path


def child_env(**extra: str) -> dict[str, str]:
    import kbmetal
    import metalrt

    roots = [str(Path(module.__file__).resolve().parents[1]) for module in (metalrt, kbmetal)]
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(roots + inherited))
    env.update(extra)
    return env
