"""What keeps a candidate's process from reaching secrets: its environment, and the judge's.

The candidate's process starts from a copy of the judge's environment with every variable that
may hold a credential removed: any name containing KEY, TOKEN, SECRET, PASSWORD, PASSWD,
CREDENTIAL, AUTH, COOKIE or PRIVATE (OPENAI_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY,
SSH_AUTH_SOCK...), and any value that looks like a provider key (sk-..., ghp_..., AKIA...),
whatever its name.

A process can also read its parent's environment through /proc/<ppid>/environ, so the judge (and
the process that started it) protect themselves: they mark themselves non-dumpable (prctl
PR_SET_DUMPABLE 0), which makes their /proc entries readable by root only, and they overwrite
the secret values in their own initial environment block, which is what /proc/<pid>/environ
shows, so that even a candidate running as root reads asterisks there. (Python's os.environ is a
copy made at start-up and keeps the values for the code that needs them.) What this cannot stop:
a candidate running as root can read any process's memory, and other processes of the same user
(the shell that started the run) keep their environment. For untrusted candidates, run kbmetal as
an unprivileged user that holds no keys.

Finally, anything written to the store passes through `redact`, which blanks every secret value
of the judge's environment wherever it appears, so a key can never land in a log or a record.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Mapping

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|COOKIE|PRIVATE", re.I)
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_live_|sk_test_|ghp_|gho_|ghs_|github_pat_|glpat-|xox[abprs]-|AKIA|ASIA|hf_|AIza)"
)
_MIN_SECRET_LENGTH = 6
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG = 1


def is_secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.match(value.strip()))


def scrubbed_environment(
    environ: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a candidate's process gets: `environ` without secrets, plus `extra`."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if not is_secret(k, v)}
    env.update(extra or {})
    return env


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values `redact` blanks: those of every secret variable of the environment."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if is_secret(k, v) and len(v) >= _MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str | None, secrets: list[str] | None = None) -> str | None:
    if not text:
        return text
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, "[redacted]")
    return text


def make_undumpable() -> bool:
    """Hide this process's /proc entries (environ, mem) from same-user processes. Linux only."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent exits, even by SIGKILL, so that no candidate outlives its judge
    (a kernel stuck in a loop would otherwise spin forever). Linux only; elsewhere the worker
    still exits when its channel closes."""
    import signal

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def hide_environ_secrets() -> int:
    """Overwrite the values of secret variables in this process's initial environment block
    (what /proc/self/environ shows) with asterisks; returns how many. Linux only."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        # after "pid (comm)": field 3 is fields[0]; env_start and env_end are fields 50 and 51
        env_start, env_end = int(fields[47]), int(fields[48])
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except (OSError, IndexError, ValueError):
        return 0
    if not env_start or env_end - env_start < len(block):
        return 0
    hidden, offset = 0, 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and value and is_secret(name.decode("utf-8", "replace"), value.decode("utf-8", "replace")):
            start = env_start + offset + len(name) + 1
            ctypes.memmove(start, b"*" * len(value), len(value))
            hidden += 1
        offset += len(entry) + 1
    return hidden


def protect_this_process() -> None:
    """What a judge (or the process that starts judges) does before any candidate runs."""
    make_undumpable()
    hide_environ_secrets()


def memory_of(pid: int) -> tuple[int, int] | None:
    """(resident bytes now, peak resident bytes) of a live process, from /proc; None if gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            status = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rss = hwm = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return rss, max(hwm, rss)
